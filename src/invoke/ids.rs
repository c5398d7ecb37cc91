//! The identifiers Lambda makes: request ids, X-Ray trace headers, the function's ARN, the log
//! stream's name, in the shapes a function sees on the real service.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::lambda::LATEST_VERSION;

/// The account in the function's ARN: AWS's documentation account, since there is no real one.
pub const ACCOUNT_ID: &str = "123456789012";

/// Random bytes, on every host: std's `RandomState` keys come from the system's generator once
/// per thread and change with each state. Request and trace ids must differ from each other,
/// not be secret.
fn random<const N: usize>() -> [u8; N] {
    use std::hash::{BuildHasher, Hasher};
    let state = std::hash::RandomState::new();
    let mut bytes = [0u8; N];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
    }
    bytes
}

/// A request id as Lambda makes them: a random (version 4) UUID.
pub fn request_id() -> String {
    let mut b = random::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    )
}

/// An X-Ray trace header as Lambda passes it in `Lambda-Runtime-Trace-Id`: `Root=1-<epoch
/// seconds in hex>-<96 random bits>;Parent=<64 random bits>;Sampled=0`.
pub fn trace_id(now: SystemTime) -> String {
    let seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        seconds as u32,
        hex::encode(random::<12>()),
        hex::encode(random::<8>())
    )
}

pub fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
}

/// `AWS_LAMBDA_LOG_STREAM_NAME`: `2024/05/01/[$LATEST]<32 hex digits>`, dated in UTC.
pub fn log_stream_name(now: SystemTime) -> String {
    let date = time::OffsetDateTime::from(now).date();
    format!(
        "{:04}/{:02}/{:02}/[{LATEST_VERSION}]{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        hex::encode(random::<16>())
    )
}

/// Epoch milliseconds, for `Lambda-Runtime-Deadline-Ms`.
pub fn epoch_millis(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn request_ids_are_v4_uuids_and_differ() {
        let id = request_id();
        assert_eq!(id.len(), 36, "{id}");
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'), "{id}");
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(request_id(), request_id());
    }

    #[test]
    fn trace_ids_have_xrays_shape() {
        let now = UNIX_EPOCH + Duration::from_secs(0x5bef4de7);
        let trace = trace_id(now);
        assert!(trace.starts_with("Root=1-5bef4de7-"), "{trace}");
        let parts: Vec<&str> = trace.split(';').collect();
        assert_eq!(parts[0].len(), "Root=1-5bef4de7-".len() + 24, "{trace}");
        assert_eq!(parts[1].len(), "Parent=".len() + 16, "{trace}");
        assert_eq!(parts[2], "Sampled=0");
    }

    #[test]
    fn log_stream_names_carry_the_utc_date() {
        // 2024-02-29T12:00:00Z
        let name = log_stream_name(UNIX_EPOCH + Duration::from_secs(1_709_208_000));
        assert!(name.starts_with("2024/02/29/[$LATEST]"), "{name}");
        assert_eq!(name.len(), "2024/02/29/[$LATEST]".len() + 32);
        assert!(log_stream_name(UNIX_EPOCH).starts_with("1970/01/01/"));
        let eve = log_stream_name(UNIX_EPOCH + Duration::from_secs(1_704_067_199));
        assert!(eve.starts_with("2023/12/31/"), "{eve}");
    }
}
