//! Lowercase hex, the one encoding of hashes, keys and nonces in Steward's tables and exports.
//!
//! Decoding is table-driven rather than a branch per digit: the offline verifier decodes one hex
//! leaf hash per entry, and that branchy loop once cost more than the hashing itself.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Digit values, 0x80 for anything that is not a hex digit.
const VALUES: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Exactly `N` bytes from `2 * N` hex digits, or `None`.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    let mut bad = 0u8;
    for (i, byte) in out.iter_mut().enumerate() {
        let (hi, lo) = (
            VALUES[digits[2 * i] as usize],
            VALUES[digits[2 * i + 1] as usize],
        );
        bad |= (hi | lo) & 0x80;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    (bad == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_input() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode::<3>("00ABff"), Some([0x00, 0xab, 0xff]));
        assert_eq!(decode::<3>("00abf"), None);
        assert_eq!(decode::<2>("0g00"), None);
    }
}
