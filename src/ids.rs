//! Type-prefixed, time-sortable ids: `usr_01jd…`, `evt_…`, `req_…`.
//!
//! A UUIDv7 (millisecond time, then randomness; monotonic within the process) written as 26
//! characters of lowercase Crockford base32, as TypeID does, after the prefix and `_`. Fixed
//! length and an alphabet in ASCII order make the text sort like the time.

use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new id with `prefix`, e.g. `new("usr")`.
pub fn new(prefix: &str) -> String {
    encode(prefix, Uuid::now_v7())
}

pub fn encode(prefix: &str, id: Uuid) -> String {
    let v = id.as_u128();
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in 0..26 {
        out.push(ALPHABET[((v >> (125 - 5 * i)) & 31) as usize] as char);
    }
    out
}

/// The 128-bit value of a well-formed id with `prefix` (see [`is_valid`]). Ids of one prefix
/// compare as text exactly as these values compare as numbers.
pub fn decode(prefix: &str, id: &str) -> Option<u128> {
    if !is_valid(prefix, id) {
        return None;
    }
    let rest = &id.as_bytes()[prefix.len() + 1..];
    Some(rest.iter().fold(0u128, |v, b| {
        let digit = ALPHABET.iter().position(|a| a == b).expect("validated") as u128;
        (v << 5) | digit
    }))
}

/// Checks that `id` has `prefix` and a well-formed suffix (used to reject garbage ids early).
pub fn is_valid(prefix: &str, id: &str) -> bool {
    let Some(rest) = id.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) else {
        return false;
    };
    rest.len() == 26 && rest.as_bytes()[0] <= b'7' && rest.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_validate() {
        let a = new("usr");
        let b = new("usr");
        assert!(a < b, "{a} !< {b}");
        assert_eq!(a.len(), 30);
        assert!(is_valid("usr", &a));
        assert!(!is_valid("lst", &a));
        assert!(!is_valid("usr", "usr_not-an-id"));
        assert_eq!(encode("x", Uuid::nil()), "x_00000000000000000000000000");
        assert_eq!(encode("x", Uuid::max()), "x_7zzzzzzzzzzzzzzzzzzzzzzzzz");
        assert_eq!(decode("usr", &a), Some(decode("usr", &a).unwrap()));
        assert!(decode("usr", &a) < decode("usr", &b));
        let u = Uuid::now_v7();
        assert_eq!(decode("x", &encode("x", u)), Some(u.as_u128()));
        assert_eq!(decode("x", &encode("x", Uuid::max())), Some(u128::MAX));
        assert_eq!(decode("lst", &a), None);
    }
}
