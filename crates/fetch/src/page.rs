//! A page as Graph sent it: the raw bytes, where each item sits in them, and the links.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use crate::error::RedactedUrl;
use crate::http::Expect;

/// The link a page carries, exactly as Graph sent it (absolute or relative).
#[derive(Clone, PartialEq, Eq)]
pub enum PageLink {
    /// `@odata.nextLink`: more pages of this round or list follow.
    Next(String),
    /// `@odata.deltaLink`: the delta round is complete; the link starts the next round.
    Delta(String),
    /// Neither: the last page of a list or time window (never of a delta round).
    Last,
}

impl PageLink {
    /// The nextLink, if more pages follow.
    pub fn next(&self) -> Option<&str> {
        match self {
            PageLink::Next(link) => Some(link),
            _ => None,
        }
    }

    /// The deltaLink, if this page ends a delta round.
    pub fn delta(&self) -> Option<&str> {
        match self {
            PageLink::Delta(link) => Some(link),
            _ => None,
        }
    }
}

impl fmt::Debug for PageLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageLink::Next(link) => write!(f, "Next({:?})", RedactedUrl::from_text(link)),
            PageLink::Delta(link) => write!(f, "Delta({:?})", RedactedUrl::from_text(link)),
            PageLink::Last => f.write_str("Last"),
        }
    }
}

/// One page of a collection, exactly as received. Nothing is re-serialised: each item is
/// a byte range of `body`, so the caller can store items byte for byte. The caller decides
/// when the page's `link` may be saved (after the page's rows are durable).
#[derive(Clone)]
pub struct Page {
    pub body: Bytes,
    /// Byte ranges of each element of `value` in `body`.
    pub items: Vec<Range<usize>>,
    /// Where the round or list goes on from here.
    pub link: PageLink,
    pub odata_count: Option<u64>,
    /// 1 for the first page of a round (or of a resumed round), then 2, 3, ...
    pub number: u64,
    /// The request that got this page, tokens redacted.
    pub url: RedactedUrl,
}

impl Page {
    /// Item `i` of `value`, as sent.
    pub fn item(&self, i: usize) -> &str {
        let bytes = &self.body[self.items[i].clone()];
        // Bodies are checked to be UTF-8 JSON when the page is parsed.
        std::str::from_utf8(bytes).expect("page items are validated UTF-8 when the page is parsed")
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.items.len()).map(|i| self.item(i))
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("number", &self.number)
            .field("url", &self.url)
            .field("items", &self.items.len())
            .field("bytes", &self.body.len())
            .field("link", &self.link)
            .field("odata_count", &self.odata_count)
            .finish()
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
    #[serde(rename = "@odata.count")]
    count: Option<u64>,
    #[serde(borrow)]
    value: Option<Vec<&'a RawValue>>,
}

/// Resolve a link against Graph's root: absolute links stay, relative ones (with or
/// without a leading `/`) go below `graph_url`, whose path prefix is kept. A link to
/// another origin is refused: it would carry our bearer token elsewhere.
pub(crate) fn resolve_link(graph_url: &Url, link: &str) -> Result<Url, String> {
    let url = match Url::parse(link) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let mut base = graph_url.clone();
            if !base.path().ends_with('/') {
                base.set_path(&format!("{}/", base.path()));
            }
            base.join(link.trim_start_matches('/')).map_err(|e| {
                format!(
                    "link {} does not resolve against {graph_url}: {e}",
                    RedactedUrl::from_text(link)
                )
            })?
        }
        Err(e) => {
            return Err(format!(
                "link {} is not a URL: {e}",
                RedactedUrl::from_text(link)
            ));
        }
    };
    if url.origin() != graph_url.origin() {
        return Err(format!(
            "link {} points outside {}; refusing to follow it",
            RedactedUrl::new(&url),
            graph_url.origin().ascii_serialization()
        ));
    }
    Ok(url)
}

/// A link saved by an earlier run, resolved against today's `graph_url`. One saved under
/// another `--graph-url` (a proxy, before or after) keeps its path and query, which carry
/// Graph's state, and goes to the Graph configured now: the bearer token goes nowhere else.
pub(crate) fn resolve_saved_link(graph_url: &Url, link: &str) -> Result<Url, String> {
    let refused = match resolve_link(graph_url, link) {
        Ok(url) => return Ok(url),
        Err(refused) => refused,
    };
    let Ok(saved) = Url::parse(link) else {
        return Err(refused);
    };
    // From the API version on: a proxy's own path prefix is not Graph's.
    let path = saved.path();
    let version = ["/v1.0/", "/beta/"]
        .iter()
        .filter_map(|v| path.find(v))
        .min()
        .unwrap_or(0);
    let mut path_and_query = path[version..].to_string();
    if let Some(query) = saved.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let url = resolve_link(graph_url, &path_and_query)?;
    tracing::warn!(
        saved = %RedactedUrl::new(&saved),
        now = %RedactedUrl::new(&url),
        "a saved link points at another Graph address than --graph-url; it is followed at --graph-url"
    );
    Ok(url)
}

/// Check a response body is a page of a collection (or, for an entity, one JSON object)
/// and find its items and links.
pub(crate) fn parse_page(
    body: Bytes,
    graph_url: &Url,
    expects: Expect,
    number: u64,
    url: RedactedUrl,
) -> Result<Page, String> {
    if expects == Expect::Entity {
        let value: &RawValue = serde_json::from_slice(&body)
            .map_err(|e| format!("not a JSON entity ({e}; {} bytes)", body.len()))?;
        let text = value.get();
        if !text.starts_with('{') {
            return Err("the entity is not a JSON object".into());
        }
        let offset = text.as_ptr() as usize - body.as_ptr() as usize;
        // One item: the entity's own byte range.
        let items: Vec<Range<usize>> = std::iter::once(offset..offset + text.len()).collect();
        return Ok(Page {
            body,
            items,
            link: PageLink::Last,
            odata_count: None,
            number,
            url,
        });
    }
    let expects_delta = expects == Expect::Delta;
    let envelope: Envelope<'_> = serde_json::from_slice(&body)
        .map_err(|e| format!("not a JSON page ({e}; {} bytes)", body.len()))?;
    let value = envelope
        .value
        .ok_or_else(|| "the page has no `value` array".to_string())?;
    let start = body.as_ptr() as usize;
    let mut items = Vec::with_capacity(value.len());
    for (i, raw) in value.iter().enumerate() {
        let text = raw.get();
        if !text.starts_with('{') {
            return Err(format!("item {i} of `value` is not a JSON object"));
        }
        let offset = text.as_ptr() as usize - start;
        items.push(offset..offset + text.len());
    }
    for link in [&envelope.next_link, &envelope.delta_link]
        .into_iter()
        .flatten()
    {
        resolve_link(graph_url, link)?;
    }
    match (&envelope.next_link, &envelope.delta_link) {
        (Some(_), Some(_)) => {
            return Err("the page has both @odata.nextLink and @odata.deltaLink".into());
        }
        (None, None) if expects_delta => {
            return Err("the page has neither @odata.nextLink nor @odata.deltaLink; a delta round must end with a deltaLink".into());
        }
        _ => {}
    }
    let link = match (envelope.next_link, envelope.delta_link) {
        (Some(next), _) => PageLink::Next(next),
        (None, Some(delta)) => PageLink::Delta(delta),
        (None, None) => PageLink::Last,
    };
    let odata_count = envelope.count;
    drop(value);
    Ok(Page {
        body,
        items,
        link,
        odata_count,
        number,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Url {
        Url::parse("https://proxy.example/graph/").unwrap()
    }

    fn parse(body: &'static str, delta: bool) -> Result<Page, String> {
        let url = RedactedUrl::new(&graph());
        let expects = if delta {
            Expect::Delta
        } else {
            Expect::Collection
        };
        parse_page(
            Bytes::from_static(body.as_bytes()),
            &graph(),
            expects,
            1,
            url,
        )
    }

    #[test]
    fn an_entity_is_a_page_of_one_item() {
        let url = RedactedUrl::new(&graph());
        let body = Bytes::from_static(br#" {"@odata.context":"x","id":"F","childFolderCount":2} "#);
        let page = parse_page(body, &graph(), Expect::Entity, 1, url.clone()).unwrap();
        assert_eq!(page.len(), 1);
        assert!(page.item(0).starts_with("{\"@odata.context\""));
        assert_eq!(page.link, PageLink::Last);
        assert!(parse_page(Bytes::from_static(b"[1]"), &graph(), Expect::Entity, 1, url).is_err());
    }

    #[test]
    fn items_are_exact_byte_ranges_of_the_body() {
        let page = parse(r#"{"@odata.count":2,"value":[ {"id":"1","x":"é"} ,{"id" : "2"}],"@odata.deltaLink":"/v1.0/x?$deltatoken=t"}"#, true).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page.item(0), r#"{"id":"1","x":"é"}"#);
        assert_eq!(page.item(1), r#"{"id" : "2"}"#);
        assert_eq!(page.odata_count, Some(2));
        assert_eq!(page.link, PageLink::Delta("/v1.0/x?$deltatoken=t".into()));
    }

    #[test]
    fn broken_pages_say_what_is_wrong() {
        assert!(
            parse(r#"{"value":[{"id":"1"}"#, false)
                .unwrap_err()
                .contains("not a JSON page")
        );
        assert!(
            parse(r#"{"items":[]}"#, false)
                .unwrap_err()
                .contains("no `value`")
        );
        assert!(
            parse(r#"{"value":[1]}"#, false)
                .unwrap_err()
                .contains("item 0")
        );
        assert!(
            parse(r#"{"value":[]}"#, true)
                .unwrap_err()
                .contains("neither")
        );
        assert!(
            parse(
                r#"{"value":[],"@odata.nextLink":"https://evil.example/x?$skiptoken=s"}"#,
                false
            )
            .unwrap_err()
            .contains("outside")
        );
    }

    #[test]
    fn a_saved_link_of_another_graph_address_goes_to_the_configured_one() {
        let g = graph();
        for saved in [
            "https://graph.microsoft.com/v1.0/users/u/chats/getAllMessages/delta?$deltatoken=a",
            "http://127.0.0.1:9/other/prefix/v1.0/users/u/chats/getAllMessages/delta?$deltatoken=a",
        ] {
            assert_eq!(
                resolve_saved_link(&g, saved).unwrap().as_str(),
                "https://proxy.example/graph/v1.0/users/u/chats/getAllMessages/delta?$deltatoken=a",
                "{saved}"
            );
        }
    }

    #[test]
    fn relative_links_resolve_below_the_graph_root() {
        let g = graph();
        assert_eq!(
            resolve_link(&g, "/v1.0/teams/t?$skiptoken=a")
                .unwrap()
                .as_str(),
            "https://proxy.example/graph/v1.0/teams/t?$skiptoken=a"
        );
        assert_eq!(
            resolve_link(&g, "v1.0/teams/t").unwrap().as_str(),
            "https://proxy.example/graph/v1.0/teams/t"
        );
        assert_eq!(
            resolve_link(&g, "https://proxy.example/graph/beta/x")
                .unwrap()
                .as_str(),
            "https://proxy.example/graph/beta/x"
        );
    }
}
