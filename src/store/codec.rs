//! The byte encoding of every value Souk keeps in redb: one format-version byte, then JSON.
//!
//! Why our own envelope: redb stores `&[u8]` faithfully across its own format changes, while its
//! typed values have changed between majors. The version byte lets a future Souk migrate old
//! values instead of misreading them, and lets an older Souk refuse a newer file clearly.
//!
//! Keeping each value well under 4 KiB is the caller's job: redb's buddy allocator rounds a
//! 4 KiB value up to the next order, so values at that size double the file. Split large
//! entities, or store their bulky parts elsewhere.

use super::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;

/// The version this build writes, and the only one it reads.
pub const FORMAT_VERSION: u8 = 1;

/// Encodes `value` as `[FORMAT_VERSION] ++ JSON`.
///
/// # Panics
/// If `value` cannot be JSON at all (a map with non-string keys, or a `Serialize` impl that fails).
/// That is a programming error in the type, found by its first test; use [`try_encode`] for values
/// whose shape is not fixed at compile time. Inside a [`super::Store::write`] job a panic is caught
/// and reported as an error, never a crash.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    match try_encode(value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{e}"),
    }
}

/// [`encode`] that reports a value JSON cannot represent instead of panicking.
pub fn try_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_VERSION];
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Encode {
        path: PathBuf::new(),
        source: Arc::new(e),
    })?;
    Ok(out)
}

/// [`encode`] of a value the caller already holds as JSON (e.g. to store, publish and reply with
/// one encoding of the same entity).
pub fn encode_json(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + json.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(json);
    out
}

/// Decodes what [`encode`] wrote. An unknown version is refused, never guessed at.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, json)) => {
            serde_json::from_slice(json).map_err(|e| StoreError::Decode {
                path: PathBuf::new(),
                source: Arc::new(e),
            })
        }
        Some((&found, _)) => Err(StoreError::UnknownFormat {
            path: PathBuf::new(),
            found,
            supported: FORMAT_VERSION,
        }),
        None => Err(StoreError::Decode {
            path: PathBuf::new(),
            source: Arc::new(serde::de::Error::custom(
                "the value is empty (no format byte)",
            )),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::HashMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        id: String,
        name: String,
        version: u64,
    }

    fn user() -> User {
        User {
            id: "acc_1".into(),
            name: "Amal".into(),
            version: 3,
        }
    }

    #[test]
    fn round_trips_with_a_leading_version_byte() {
        let bytes = encode(&user());
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(&bytes[1..], br#"{"id":"acc_1","name":"Amal","version":3}"#);
        assert_eq!(decode::<User>(&bytes).unwrap(), user());
    }

    #[test]
    fn refuses_an_unknown_version_and_says_which() {
        let mut bytes = encode(&user());
        bytes[0] = 2;
        let e = decode::<User>(&bytes).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::UnknownFormat {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("format version 2"), "{e}");
    }

    #[test]
    fn refuses_empty_and_malformed_values() {
        let e = decode::<User>(&[]).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = decode::<User>(&[FORMAT_VERSION, b'{']).unwrap_err();
        assert!(matches!(e, StoreError::Decode { .. }), "{e:?}");
        // Valid JSON of the wrong shape is a decode error too, not a silent default.
        let e = decode::<User>(&encode(&42)).unwrap_err();
        assert!(matches!(e, StoreError::Decode { .. }), "{e:?}");
    }

    #[test]
    fn try_encode_reports_values_json_cannot_hold() {
        let map: HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let e = try_encode(&map).unwrap_err();
        assert!(matches!(e, StoreError::Encode { .. }), "{e:?}");
    }
}
