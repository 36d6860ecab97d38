//! HTML to text takes at most about a second per megabyte of any input: bodies come from
//! anyone who can send mail to a custodian, and one crafted body must not stall a run.
//! Each input here is a shape that once made the conversion quadratic or worse.

use std::time::{Duration, Instant};

use transform::html_to_text;

/// `open` repeated to about `bytes` in all, a word, then `close` as many times.
fn nested(open: &str, close: &str, bytes: usize) -> String {
    let n = bytes / (open.len() + close.len());
    let mut html = open.repeat(n);
    html.push_str("deep");
    html.push_str(&close.repeat(n));
    html
}

fn repeated(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len())
}

/// Time allowed for `bytes` of input: a second per MB, and never less than a second.
/// `cargo test` builds this crate without optimisation (its dependencies with), which
/// makes its own loops several times slower than in a release: there it gets twice as
/// long. A quadratic path stays far outside either (a 2 MB nest of quotes took 335 s).
fn allowance(bytes: usize) -> Duration {
    let per_mb = if cfg!(debug_assertions) { 2.0 } else { 1.0 };
    Duration::from_secs_f64((per_mb * bytes as f64 / 1e6).max(1.0))
}

#[test]
fn any_input_takes_at_most_a_second_per_megabyte() {
    const MB: usize = 1_000_000;
    let inputs: Vec<(&str, String)> = vec![
        ("nested lists", nested("<ul><li>x", "</li></ul>", 3 * MB)),
        (
            // Many lists, each nested just under the depth html2text is given.
            "nested lists under html2text's limits",
            repeated(&nested("<ul><li>item ", "</li></ul>", 1_000), 400_000),
        ),
        ("unclosed list items", repeated("<ul><li>x", 2 * MB)),
        ("nested divs", nested("<div>", "</div>", 2 * MB)),
        (
            "nested quotes",
            nested("<blockquote>q", "</blockquote>", 2 * MB),
        ),
        (
            "nested tables",
            nested("<table><tr><td>", "</td></tr></table>", 2 * MB),
        ),
        (
            "one wide table row",
            format!("<table><tr>{}</tr></table>", repeated("<td>c</td>", 2 * MB)),
        ),
        ("unclosed formatting", repeated("<b><i>x", 2 * MB)),
        ("misnested formatting", repeated("<b><p>x</b>y</p>", 2 * MB)),
        ("unterminated quotes", repeated("<a \"x", 2 * MB)),
        ("unterminated tags", repeated("<a x", 2 * MB)),
        ("lone angle brackets", repeated("< a <3 ", 2 * MB)),
        (
            "entities",
            repeated("&amp;&#x41;&bogus;&#99999999;", 2 * MB),
        ),
        ("comments", repeated("<!-- x --><p>y", 2 * MB)),
        (
            "unclosed script",
            format!("<script>{}", repeated("<p>x", 2 * MB)),
        ),
        (
            "mail body",
            repeated(
                "<p style=\"margin:0\"><span style=\"font-family:Calibri\">Dear team, the invoice is attached.</span></p>",
                3 * MB,
            ),
        ),
    ];
    let mut slow = Vec::new();
    for (name, html) in &inputs {
        let allowed = allowance(html.len());
        // The best of up to three runs: other work on the machine only adds time.
        let mut took = Duration::MAX;
        let mut text = String::new();
        for _ in 0..3 {
            let started = Instant::now();
            text = html_to_text(html);
            took = took.min(started.elapsed());
            if took <= allowed {
                break;
            }
        }
        eprintln!(
            "{name}: {} bytes in {:.3}s ({} bytes of text)",
            html.len(),
            took.as_secs_f64(),
            text.len()
        );
        if took > allowed {
            slow.push(format!(
                "{name}: {} bytes took {:.2}s, allowed {:.2}s",
                html.len(),
                took.as_secs_f64(),
                allowed.as_secs_f64()
            ));
        }
    }
    assert!(slow.is_empty(), "{slow:#?}");
}

#[test]
fn deep_markup_keeps_its_words() {
    let html = nested("<ul><li>x", "</li></ul>", 100_000);
    let text = html_to_text(&html);
    assert_eq!(text.matches('x').count(), 100_000 / 19);
    assert!(text.contains("deep"));
}
