//! Properties of the page parser on generated bodies: anything at all is a page or a
//! clear refusal, never a panic; a page's items are exact byte ranges of its body; a link
//! is followed only on Graph's own origin. Seeded (`PROPTEST_RNG_SEED`, default fixed),
//! `PROPTEST_CASES` cases each.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::Value;
use url::Url;

use crate::error::RedactedUrl;
use crate::page::parse_page;

fn config(cases: u32) -> ProptestConfig {
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|v| v.parse().ok())
    }
    ProptestConfig {
        cases: env("PROPTEST_CASES").unwrap_or(cases),
        rng_seed: proptest::test_runner::RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(9)),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn graph() -> Url {
    Url::parse("https://graph.example/").unwrap()
}

fn parse(body: Vec<u8>, expects_delta: bool) -> Result<crate::page::Page, String> {
    parse_page(
        Bytes::from(body),
        &graph(),
        if expects_delta {
            crate::http::Expect::Delta
        } else {
            crate::http::Expect::Collection
        },
        1,
        RedactedUrl::new(&graph()),
    )
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn item() -> impl Strategy<Value = String> {
    (
        prop::collection::btree_map("\\PC{0,8}", json_value(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(members, pretty)| {
            let value = Value::Object(members.into_iter().collect());
            if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            }
        })
}

fn link() -> impl Strategy<Value = String> {
    prop_oneof![
        "/v1\\.0/users/[a-z0-9]{1,8}/chats/getAllMessages\\?\\$skiptoken=[A-Za-z0-9%]{1,12}",
        "v1\\.0/teams/[a-z]{1,4}/channels/[a-z]{1,4}/messages/delta\\?\\$deltatoken=[a-z0-9]{1,8}",
        "https://graph\\.example/beta/x\\?\\$skiptoken=[a-z]{1,8}",
        "https://elsewhere\\.example/v1\\.0/x\\?\\$skiptoken=[a-z]{1,8}",
        "http://graph\\.example/v1\\.0/x",
        "\\PC{0,20}",
    ]
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn any_bytes_are_a_page_or_a_refusal(body in prop::collection::vec(any::<u8>(), 0..256), delta in any::<bool>()) {
        if let Ok(page) = parse(body, delta) {
            for i in 0..page.len() {
                prop_assert!(page.item(i).starts_with('{'), "item {} is an object", i);
            }
        }
    }

    #[test]
    fn page_shaped_text_is_a_page_or_a_refusal(
        body in "[{}\\[\\]\",: ]{0,4}(\"value\"|\"@odata\\.nextLink\"|\"@odata\\.deltaLink\"|\"@odata\\.count\"|[0-9]{1,3}|\"[a-z/?=$:.]{0,12}\"|[{}\\[\\],: ]){0,40}",
    ) {
        let _ = parse(body.into_bytes(), false);
    }

    #[test]
    fn items_are_the_exact_bytes_of_each_value_element(
        items in prop::collection::vec(item(), 0..8),
        next in prop::option::of(link()),
        count in prop::option::of(any::<u64>()),
        space in "[ \\t\\r\\n]{0,3}",
    ) {
        let mut body = format!("{{{space}\"value\"{space}:{space}[");
        body.push_str(&items.join(&format!("{space},{space}")));
        body.push_str(&format!("{space}]"));
        if let Some(next) = &next {
            body.push_str(&format!(",\"@odata.nextLink\":{}", Value::String(next.clone())));
        }
        if let Some(count) = count {
            body.push_str(&format!(",\"@odata.count\":{count}"));
        }
        body.push('}');
        let parsed = parse(body.into_bytes(), false);
        let same_origin = next.as_deref().is_none_or(|l| {
            crate::page::resolve_link(&graph(), l).is_ok_and(|u| u.origin() == graph().origin())
        });
        match parsed {
            Ok(page) => {
                prop_assert!(same_origin, "followed a link off Graph's origin: {:?}", next);
                prop_assert_eq!(page.len(), items.len());
                for (i, item) in items.iter().enumerate() {
                    prop_assert_eq!(page.item(i), item.as_str());
                }
                prop_assert_eq!(page.odata_count, count);
            }
            Err(reason) => prop_assert!(!same_origin, "refused a good page: {}", reason),
        }
    }
}
