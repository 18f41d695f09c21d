//! Reading a header map as proxy-wasm hosts serialize it (`proxy_get_header_map_pairs`), in
//! place: u32 count, count × (u32 name length, u32 value length), then each name and each value
//! followed by a NUL; integers little-endian. A truncated or inconsistent buffer yields the pairs
//! before the damage and never panics.

/// The (name, value) pairs of a serialized header map.
pub fn iter(buf: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let u32_at = move |at: usize| -> Option<usize> {
        let b: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(b) as usize)
    };
    let count = u32_at(0).unwrap_or(0);
    let mut data = count.saturating_mul(8).saturating_add(4);
    (0..count).map_while(move |i| {
        let name_len = u32_at(i.checked_mul(8)?.checked_add(4)?)?;
        let value_len = u32_at(i.checked_mul(8)?.checked_add(8)?)?;
        let name = buf.get(data..data.checked_add(name_len)?)?;
        let value_at = data.checked_add(name_len)?.checked_add(1)?;
        let value = buf.get(value_at..value_at.checked_add(value_len)?)?;
        data = value_at.checked_add(value_len)?.checked_add(1)?;
        Some((name, value))
    })
}

/// The value of the first header called `name` (Envoy gives lower-case names).
pub fn find<'a>(buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
    iter(buf)
        .find(|(n, _)| *n == name.as_bytes())
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The host's serialization (as in proxy-wasm's `utils::serialize_map`).
    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend_from_slice(n);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    #[test]
    fn reads_every_pair_and_finds_by_name() {
        let pairs: [(&[u8], &[u8]); 4] = [
            (b":method", b"OPTIONS"),
            (b"origin", b"https://a.example"),
            (b"x-empty", b""),
            (b"access-control-request-headers", b"content-type, x-\xff"),
        ];
        let buf = serialize(&pairs);
        assert_eq!(iter(&buf).collect::<Vec<_>>(), pairs.to_vec());
        assert_eq!(find(&buf, ":method"), Some(&b"OPTIONS"[..]));
        assert_eq!(find(&buf, "x-empty"), Some(&b""[..]));
        assert_eq!(find(&buf, "absent"), None);
        assert_eq!(iter(&[]).count(), 0);
        assert_eq!(iter(&serialize(&[])).count(), 0);
    }

    #[test]
    fn damaged_buffers_give_the_pairs_before_the_damage() {
        let pairs: [(&[u8], &[u8]); 2] = [(b"a", b"1"), (b"bb", b"22")];
        let buf = serialize(&pairs);
        // The header (count, two length pairs) is 20 bytes; "a\0" "1" ends at 23, "bb\0" "22"
        // at 29 (the final NUL is not needed).
        for cut in 0..=buf.len() {
            let got: Vec<_> = iter(&buf[..cut]).collect();
            let whole = [23, 29].iter().filter(|&&end| end <= cut).count();
            assert_eq!(got, pairs[..whole], "cut at {cut}");
        }
        let mut huge = buf.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(iter(&huge).count(), 0);
        let mut long_name = buf;
        long_name[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(iter(&long_name).count(), 0);
    }

    /// Up to 8 headers of any bytes (NUL included), up to 11 bytes each.
    fn any_pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..12);
        proptest::collection::vec((bytes(), bytes()), 0..8)
    }

    fn as_refs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect()
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = iter(&buf).count();
            let _ = find(&buf, "origin");
        }

        #[test]
        fn round_trips(pairs in any_pairs()) {
            let refs = as_refs(&pairs);
            let buf = serialize(&refs);
            prop_assert_eq!(iter(&buf).collect::<Vec<_>>(), refs);
        }

        /// Cut anywhere, a buffer gives a prefix of its pairs.
        #[test]
        fn truncated_buffers_give_a_prefix(pairs in any_pairs(), cut in any::<proptest::sample::Index>()) {
            let refs = as_refs(&pairs);
            let buf = serialize(&refs);
            let got: Vec<_> = iter(&buf[..cut.index(buf.len() + 1)]).collect();
            prop_assert!(refs.starts_with(&got), "{:?} is not a prefix of {:?}", got, refs);
        }
    }
}
