//! `json_text::parse` (the filter's own JSON parser) against `serde_json::from_slice::<Value>`:
//! both accept and refuse exactly the same inputs, and when they accept, the values are equal
//! down to the number representation (u64 / i64 / f64) and the bits of every float (so `-0.0`
//! is not `0.0`). Inputs: generated valid JSON (nested values, repeated keys, whitespace,
//! numbers at the edges of u64, i64 and f64 and with many digits, strings with every kind of
//! escape and surrogate pairs); nearly valid JSON (broken surrogates, bad escapes, raw control
//! or non-UTF-8 bytes, numbers out of range or with exponents past i32) further damaged
//! (truncated, bytes replaced, inserted or deleted); nesting around the depth limit; every
//! power of ten serde_json keeps in its table. The fuzz target `json_text` (fuzz/) checks the
//! same on whatever libFuzzer builds.

// A test file: a panic is how a test fails (clippy.toml covers only #[test] functions).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use cors_core::json_text::parse;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config as PropConfig;
use serde_json::Value;

/// Equal values, and printed the same: serde_json prints `1`, `-1` and `1.0` for a u64, an i64
/// and an f64, and every float in its shortest form that reads back to the same bits (`-0.0`
/// is not `0.0`), so this tells number kinds and float bits apart.
fn same(a: &Value, b: &Value) -> bool {
    a == b && format!("{a}") == format!("{b}")
}

/// The property: the same verdict, and the same value when both accept.
fn check(input: &[u8]) -> Result<(), TestCaseError> {
    let ours = parse(input);
    let theirs = serde_json::from_slice::<Value>(input);
    let shown = String::from_utf8_lossy(input);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => prop_assert!(same(a, b), "{:?}: ours {:?}, serde_json {:?}", shown, a, b),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(
            false,
            "{:?}: ours {:?}, serde_json {:?}",
            shown,
            ours,
            theirs.map_err(|e| e.to_string())
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------- valid JSON text

/// Number texts that sit on an edge of serde_json's algorithm or of f64.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "-0E-0",
    "1E+2",
    "0.1",
    "0.3",
    "1e23",
    "9007199254740993",
    "9.999999999999999e22",
    "3.141592653589793238462643383279",
    "1e308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "17976931348623157e292",
    "1e309",
    "-1e309",
    "8.98846567431158e307",
    "2.2250738585072014e-308",
    "2.2250738585072011e-308",
    "4.9406564584124654e-324",
    "5e-324",
    "2.4703282292062327e-324",
    "2.4703282292062328e-324",
    "1e-400",
    "-1e-400",
    "1e-700",
    "18446744073709551615",
    "18446744073709551616",
    "18446744073709551619.5",
    "1844674407370955161.5",
    "184467440737095516150",
    "-9223372036854775808",
    "-9223372036854775809",
    "-18446744073709551615",
    "-18446744073709551616",
    "1e2147483647",
    "1e2147483648",
    "1e-2147483648",
    "1e-2147483649",
    "0e2147483648",
    "-0e2147483648",
    "0.0000000000000000000000000000001e31",
    "100000000000000000000000000000000e-32",
    "123456789012345678901234567890",
    "0.000000000000000000000000000000000000000000000000000000001",
];

/// Numbers that f64 can hold: the JSON grammar with short exponents, any finite f64 written as
/// Rust writes it (in full, which is hundreds of digits for tiny or huge values; in shortest
/// scientific form; with 17 to 25 significant digits), integers with many digits, and every
/// i64 and u64.
fn number_in_range() -> impl Strategy<Value = String> {
    let grammar = (
        "-?",
        prop_oneof!["0", "[1-9][0-9]{0,24}"],
        prop::option::of("\\.[0-9]{1,24}"),
        prop::option::of("[eE][+-]?[0-9]{1,2}"),
    )
        .prop_map(|(sign, int, frac, exp)| {
            format!(
                "{sign}{int}{}{}",
                frac.unwrap_or_default(),
                exp.unwrap_or_default()
            )
        });
    let float = (any::<u64>(), 0..4usize, 16..25usize)
        .prop_map(|(bits, style, digits)| (f64::from_bits(bits), style, digits))
        .prop_filter("finite", |(f, _, _)| f.is_finite())
        .prop_map(|(f, style, digits)| match style {
            0 => format!("{f}"),
            1 => format!("{f:e}"),
            2 => format!("{f:.digits$e}"),
            _ => format!("{f:?}"),
        });
    let long = (
        "-?[1-9][0-9]{15,120}",
        // At least one digit after the point: "1." is not JSON.
        prop::option::of("\\.0{0,30}[0-9]{1,60}"),
        prop::option::of("[eE]-?[0-9]{1,2}"),
    )
        .prop_map(|(int, frac, exp)| {
            format!(
                "{int}{}{}",
                frac.unwrap_or_default(),
                exp.unwrap_or_default()
            )
        });
    prop_oneof![
        4 => grammar,
        3 => float,
        1 => long,
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
    ]
}

/// Any number text: those above, the edges, and exponents of 3 to 12 digits (past f64's range
/// and past i32, where serde_json gives up counting).
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => number_in_range(),
        1 => prop::sample::select(EDGE_NUMBERS).prop_map(str::to_owned),
        1 => "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?[eE][+-]?[0-9]{3,12}",
    ]
}

fn hex_escape(n: u32, upper: bool) -> String {
    if upper {
        format!("\\u{n:04X}")
    } else {
        format!("\\u{n:04x}")
    }
}

/// One piece of a valid string literal's contents: plain text, any Unicode scalar value
/// written raw, the short escapes, `\u` escapes of any code unit but a surrogate (upper and
/// lower case hex), surrogate pairs.
fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9 ._:/*-]{1,6}",
        3 => any::<char>()
            .prop_filter("plain", |c| *c >= ' ' && *c != '"' && *c != '\\')
            .prop_map(String::from),
        3 => prop::sample::select(&["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"][..])
            .prop_map(str::to_owned),
        3 => (any::<u16>(), any::<bool>())
            .prop_filter("not a surrogate", |(n, _)| !(0xD800..0xE000).contains(n))
            .prop_map(|(n, up)| hex_escape(u32::from(n), up)),
        2 => (0xD800u32..0xDC00, 0xDC00u32..0xE000, any::<bool>())
            .prop_map(|(hi, lo, up)| format!("{}{}", hex_escape(hi, up), hex_escape(lo, up))),
    ]
}

/// Raw bytes a string literal may not hold (controls, bytes that are not UTF-8, an encoded
/// surrogate, a code point past U+10FFFF), and tab and DEL which differ in that.
const RAW_BYTES: &[&[u8]] = &[
    b"\x00",
    b"\x1f",
    b"\t",
    b"\n",
    b"\x7f",
    b"\x80",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xff",
];

/// One piece that breaks a string literal, or nearly: a lone high or low surrogate, a high
/// one followed by something else than a low one, a bad escape, a raw byte from `RAW_BYTES`.
fn broken_string_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => (0xD800u32..0xE000, prop::sample::select(&["", "\\u0041", "\\n", "\\ud800", "\\udbff\\udfff", "x", "\\"][..]))
            .prop_map(|(n, next)| format!("{}{next}", hex_escape(n, false)).into_bytes()),
        1 => prop::sample::select(&["\\x", "\\u12", "\\u12g4", "\\U0041", "\\'", "\\ "][..])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::sample::select(RAW_BYTES).prop_map(<[u8]>::to_vec),
    ]
}

fn string_text(piece: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece, 0..6)
        .prop_map(|pieces| [&b"\""[..], &pieces.concat(), b"\""].concat())
}

fn ws() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => Just(Vec::new()), 1 => "[ \t\n\r]{1,3}".prop_map(String::into_bytes)]
}

/// Object keys from a small pool, so that repeated keys happen, or any string.
fn key_text(string: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::sample::select(&["\"a\"", "\"b\"", "\"\\u0061\"", "\"\""][..]).prop_map(|s| s.as_bytes().to_vec()),
        1 => string,
    ]
}

fn join(open: u8, items: Vec<Vec<u8>>, close: u8, ws: Vec<u8>) -> Vec<u8> {
    let mut out = vec![open];
    out.extend(&ws);
    out.extend(items.join(&b","[..]));
    out.push(close);
    out
}

/// JSON text of nested values (up to 6 levels, 64 leaves), with whitespace anywhere it may
/// be, made of these numbers and of strings of these pieces.
fn json_text(
    number: BoxedStrategy<String>,
    piece: BoxedStrategy<Vec<u8>>,
) -> impl Strategy<Value = Vec<u8>> {
    let string = string_text(piece).boxed();
    let leaf = prop_oneof![
        1 => prop::sample::select(&["true", "false", "null"][..]).prop_map(|s| s.as_bytes().to_vec()),
        3 => number.prop_map(String::into_bytes),
        3 => string.clone(),
    ];
    let value = leaf.prop_recursive(6, 64, 6, move |inner| {
        let item = (ws(), inner.clone(), ws()).prop_map(|(a, v, b)| [a, v, b].concat());
        let member = (ws(), key_text(string.clone()), ws(), ws(), inner, ws())
            .prop_map(|(a, k, b, c, v, d)| [a, k, b, b":".to_vec(), c, v, d].concat());
        prop_oneof![
            (prop::collection::vec(item, 0..6), ws())
                .prop_map(|(items, w)| join(b'[', items, b']', w)),
            (prop::collection::vec(member, 0..6), ws())
                .prop_map(|(items, w)| join(b'{', items, b'}', w)),
        ]
    });
    (ws(), value, ws()).prop_map(|(a, v, b)| [a, v, b].concat())
}

/// Valid JSON text whose numbers f64 can hold: serde_json accepts every one.
fn valid_json() -> impl Strategy<Value = Vec<u8>> {
    json_text(
        number_in_range().boxed(),
        string_piece().prop_map(String::into_bytes).boxed(),
    )
}

/// JSON text with any numbers and, now and then, a broken piece in a string.
fn nearly_valid_json() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        12 => string_piece().prop_map(String::into_bytes),
        1 => broken_string_piece(),
    ];
    json_text(number_text().boxed(), piece.boxed())
}

// ---------------------------------------------------------------- near-valid text

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index),
}

/// Bytes that change the meaning of JSON text, or any byte.
fn mutation_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(&b"{}[],:\"\\-+.eE019tfnu \t\n\x00\x1f\x7f\x80\xff"[..]),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>()).prop_map(Mutation::Truncate),
        (any::<Index>(), mutation_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), mutation_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>()).prop_map(Mutation::Delete),
    ]
}

fn mutate(mut text: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = text.len();
        match *m {
            Mutation::Truncate(i) => text.truncate(i.index(len + 1)),
            Mutation::Replace(i, b) if len > 0 => text[i.index(len)] = b,
            Mutation::Insert(i, b) => text.insert(i.index(len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                text.remove(i.index(len));
            }
            _ => {}
        }
    }
    text
}

// ---------------------------------------------------------------- properties

/// Cases per property: `CASES` texts (about 2.5 s each in a debug build), four times that many
/// lone numbers, and a few hundred nestings (only the depth and the bracket kinds vary).
const CASES: u32 = 2500;

fn config(cases: u32) -> PropConfig {
    PropConfig {
        cases,
        failure_persistence: None,
        ..PropConfig::default()
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn valid_json_is_read_as_serde_json_reads_it(text in valid_json()) {
        prop_assert!(serde_json::from_slice::<Value>(&text).is_ok());
        check(&text)?;
    }

    #[test]
    fn damaged_json_is_refused_or_read_as_serde_json_does(
        text in nearly_valid_json(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        check(&mutate(text, &mutations))?;
    }
}

proptest! {
    #![proptest_config(config(4 * CASES))]

    #[test]
    fn numbers_are_read_to_the_same_bits_as_serde_json(n in number_text(), m in prop::option::of(mutation())) {
        check(n.as_bytes())?;
        check(&mutate(n.into_bytes(), m.as_slice()))?;
    }
}

proptest! {
    #![proptest_config(config(CASES / 5))]

    #[test]
    fn nesting_is_refused_at_the_same_depth_as_serde_json(
        kinds in prop::collection::vec(any::<bool>(), 120..136),
    ) {
        let mut text = Vec::new();
        for &array in &kinds {
            text.extend_from_slice(if array { b"[" } else { b"{\"k\":" });
        }
        text.push(b'1');
        for &array in kinds.iter().rev() {
            text.push(if array { b']' } else { b'}' });
        }
        check(&text)?;
    }
}

/// Every power of ten serde_json has in its table (10^0 to 10^308) and some past it, up and
/// down, times a few significands.
#[test]
fn every_power_of_ten_is_read_as_serde_json_reads_it() {
    for k in 0..=330 {
        for text in [
            format!("1e{k}"),
            format!("1e-{k}"),
            format!("9e{k}"),
            format!("123456789e-{k}"),
            format!("18446744073709551615e-{k}"),
        ] {
            check(text.as_bytes()).unwrap();
        }
    }
}

/// The depth limit, pinned: 127 nested arrays are read, 128 are refused, by both.
#[test]
fn depth_limit_is_127() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(nested(127).as_bytes()).is_ok());
    assert!(serde_json::from_str::<Value>(&nested(127)).is_ok());
    assert!(parse(nested(128).as_bytes()).is_err());
    assert!(serde_json::from_str::<Value>(&nested(128)).is_err());
}
