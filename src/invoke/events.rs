//! The events to invoke: one from `--data`, or a stream of JSON values from a file or stdin.

use std::ops::Range;

use serde::de::IgnoredAny;

use super::error::InvokeError;

use crate::lambda::MAX_EVENT_BYTES;

/// Splits `text` into its top-level JSON values, each kept byte for byte as written (the
/// function receives exactly those bytes, as Lambda passes the payload through). A JSON array is
/// one event, not several.
pub fn parse(text: &[u8], source: &str) -> Result<Vec<Vec<u8>>, InvokeError> {
    let spans = spans(text).map_err(|error| InvokeError::InvalidEvent {
        source_name: source.to_owned(),
        reason: error.to_string(),
    })?;
    if spans.is_empty() {
        return Err(InvokeError::NoEvent {
            source_name: source.to_owned(),
        });
    }
    let events: Vec<Vec<u8>> = spans.into_iter().map(|span| text[span].to_vec()).collect();
    if let Some(event) = events.iter().find(|event| event.len() > MAX_EVENT_BYTES) {
        return Err(InvokeError::EventTooLarge { size: event.len() });
    }
    Ok(events)
}

/// The byte ranges of the top-level values, surrounding whitespace left out.
fn spans(text: &[u8]) -> Result<Vec<Range<usize>>, serde_json::Error> {
    let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<IgnoredAny>();
    let mut spans = Vec::new();
    let mut start = 0;
    while let Some(value) = stream.next() {
        value?;
        let end = stream.byte_offset();
        let skipped = text[start..end]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        spans.push(start + skipped..end);
        start = end;
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<String> {
        parse(text.as_bytes(), "test")
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e).unwrap())
            .collect()
    }

    #[test]
    fn one_value_is_kept_byte_for_byte() {
        assert_eq!(events(" {\"name\": \"x\" }\n"), ["{\"name\": \"x\" }"]);
    }

    #[test]
    fn values_follow_each_other_one_per_line_or_not() {
        assert_eq!(
            events("{\"a\":1}\n{\"b\":2}{\"c\":3}\n\n\"s\" 4 null"),
            ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "\"s\"", "4", "null"]
        );
    }

    #[test]
    fn an_array_is_one_event() {
        assert_eq!(events("[1, 2, 3]"), ["[1, 2, 3]"]);
    }

    #[test]
    fn nothing_or_not_json_is_refused() {
        assert!(matches!(
            parse(b"  \n", "stdin"),
            Err(InvokeError::NoEvent { .. })
        ));
        let err = parse(b"{\"a\":1}\n{oops}", "events.json").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`events.json` is not a sequence of JSON values: "),
            "{err}"
        );
    }

    #[test]
    fn an_event_over_lambdas_limit_is_refused_with_lambdas_message() {
        let big = format!("\"{}\"", "x".repeat(MAX_EVENT_BYTES));
        let err = parse(big.as_bytes(), "--data").unwrap_err();
        assert_eq!(
            err.to_string(),
            "6291458 byte payload is too large for the RequestResponse invocation type \
             (limit 6291456 bytes)"
        );
    }
}
