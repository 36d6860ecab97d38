"""The versions an archive of saved Graph responses must hold, computed independently.

    expected_versions.py ARCHIVE_DIR INPUT...

Walks the inputs the way `ingest --kind auto` is documented to (pages, single items,
pinned-message wrappers; chat vs mail by @odata.type or properties), takes each item's
canonical JSON (keys sorted, no whitespace) as its identity, and compares with the
raw_json of every row DuckDB reads from the archive. Prints one JSON object.
"""
import glob, json, os, sys
import duckdb

MAIL_KEYS = {"@removed", "receivedDateTime", "sentDateTime", "toRecipients",
             "internetMessageId", "conversationId", "parentFolderId", "isRead", "sender",
             "internetMessageHeaders", "bodyPreview", "ccRecipients", "bccRecipients",
             "hasAttachments", "isDraft", "inferenceClassification", "uniqueBody"}
CHAT_KEYS = {"messageType", "chatId", "channelIdentity", "replyToId", "reactions",
             "mentions", "policyViolation", "eventDetail", "messageHistory"}


def canonical(item):
    return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def kind(item):
    t = str(item.get("@odata.type", "")).lstrip("#").lower()
    if t == "microsoft.graph.chatmessage":
        return "chat"
    if t == "microsoft.graph.message" or t.startswith("microsoft.graph.eventmessage"):
        return "mail"
    keys = set(item)
    if keys & MAIL_KEYS:
        return "mail"
    if keys & CHAT_KEYS:
        return "chat"
    if "chatType" in keys:
        return "directory_chat"
    if "userPrincipalName" in keys:
        return "directory_user"
    if isinstance(item.get("message"), dict):
        return kind(item["message"])
    if keys & {"body", "from", "attachments"}:
        return "chat"
    return None


def unwrap(item):
    if kind(item) and not (set(item) & (MAIL_KEYS | CHAT_KEYS)) and isinstance(item.get("message"), dict):
        return unwrap(item["message"])
    return item


expected = {"chat": set(), "mail": set(), "unusable": 0}
for root in sys.argv[2:]:
    for path in sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True)):
        doc = json.load(open(path, encoding="utf-8"))
        items = doc["value"] if isinstance(doc, dict) and isinstance(doc.get("value"), list) else [doc]
        for item in items:
            k = kind(item) if isinstance(item, dict) else None
            if k in ("chat", "mail"):
                item = unwrap(item)
                expected[k].add(canonical(item))
                # expanded replies of a channel message are versions of their own
                for reply in item.get("replies") or []:
                    expected["chat"].add(canonical(reply))
            elif k is None:
                expected["unusable"] += 1

archive = sys.argv[1]
con = duckdb.connect()
result = {"unusable_expected": expected["unusable"]}
for table, key in (("chat_messages", "chat"), ("mail_messages", "mail")):
    files = glob.glob(os.path.join(archive, table, "*", "*.parquet"))
    rows = [r[0] for r in con.execute(
        f"SELECT raw_json FROM read_parquet('{archive}/{table}/*/*.parquet', hive_partitioning=true)"
    ).fetchall()] if files else []
    archived = [canonical(json.loads(r)) for r in rows]
    result[table] = {
        "expected": len(expected[key]),
        "rows": len(rows),
        "distinct": len(set(archived)),
        "missing": sorted(expected[key] - set(archived))[:5],
        "extra": sorted(set(archived) - expected[key])[:5],
    }
print(json.dumps(result))
