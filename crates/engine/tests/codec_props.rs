//! Property tests: every codec round-trips random and edge values bit-exactly.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use proptest::prelude::*;
use sundial_engine::codec::{decode_timestamps, decode_values, encode_timestamps, encode_values};
use sundial_engine::{FieldType, Values};

fn rt(v: &Values) -> Values {
    let mut buf = Vec::new();
    encode_values(v, &mut buf);
    decode_values(v.field_type(), &buf, v.len()).expect("decode")
}

fn float_bits(v: &Values) -> Vec<u64> {
    match v {
        Values::Float(f) => f.iter().map(|x| x.to_bits()).collect(),
        _ => unreachable!(),
    }
}

fn edge_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE / 3.0), // subnormal
        Just(-f64::MIN_POSITIVE / 7.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::from_bits(0x7ff8_0000_0000_0001)), // NaN with payload
        Just(f64::from_bits(0xfff0_0000_dead_beef)),
        any::<u64>().prop_map(f64::from_bits),
        (-100_000i64..100_000).prop_map(|i| i as f64 / 100.0),
        (-1000i64..1000).prop_map(|i| i as f64 / 10.0),
        any::<f64>(),
    ]
}

fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(-1),
        -1000i64..1000,
        any::<i64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn floats_round_trip(v in prop::collection::vec(edge_f64(), 0..1200)) {
        let vals = Values::Float(v);
        prop_assert_eq!(float_bits(&rt(&vals)), float_bits(&vals));
    }

    #[test]
    fn decimal_walks_round_trip(start in -100_000i64..100_000, steps in prop::collection::vec(-300i64..300, 0..1000), e in 0u32..6) {
        let mut x = start;
        let p = 10f64.powi(e as i32);
        let v: Vec<f64> = steps.iter().map(|s| { x += s; x as f64 / p }).collect();
        let vals = Values::Float(v);
        prop_assert_eq!(float_bits(&rt(&vals)), float_bits(&vals));
    }

    /// Decimals of different exponents in one block, large enough that some
    /// are exact at one exponent and pass 2^53 at the next.
    #[test]
    fn mixed_exponent_decimals_round_trip(v in prop::collection::vec((0i64..(1 << 53), 10u32..16), 1..300)) {
        let vals = Values::Float(v.iter().map(|&(i, e)| i as f64 / 10f64.powi(e as i32)).collect());
        prop_assert_eq!(float_bits(&rt(&vals)), float_bits(&vals));
    }

    #[test]
    fn integers_round_trip(v in prop::collection::vec(edge_i64(), 0..1200)) {
        let vals = Values::Integer(v);
        prop_assert_eq!(rt(&vals), vals);
    }

    #[test]
    fn unsigned_round_trip(v in prop::collection::vec(prop_oneof![Just(u64::MAX), Just(0u64), Just(u64::MAX / 2 + 1), any::<u64>(), 0u64..100], 0..1200)) {
        let vals = Values::Unsigned(v);
        prop_assert_eq!(rt(&vals), vals);
    }

    #[test]
    fn booleans_round_trip(v in prop::collection::vec(any::<bool>(), 0..1200)) {
        let vals = Values::Boolean(v);
        prop_assert_eq!(rt(&vals), vals);
    }

    #[test]
    fn strings_round_trip(v in prop::collection::vec(prop_oneof![Just(String::new()), "[a-z]{0,12}", any::<String>(), Just("x".repeat(5000))], 0..300)) {
        let vals = Values::String(v);
        prop_assert_eq!(rt(&vals), vals);
    }

    #[test]
    fn timestamps_round_trip(start in edge_i64(), deltas in prop::collection::vec(prop_oneof![Just(0i64), Just(10_000_000_000i64), -5i64..5, any::<i64>(), 9_999_000_000i64..10_001_000_000], 0..1200)) {
        let mut t = start;
        let ts: Vec<i64> = deltas.iter().map(|d| { t = t.wrapping_add(*d); t }).collect();
        let mut buf = Vec::new();
        encode_timestamps(&ts, &mut buf);
        prop_assert_eq!(decode_timestamps(&buf, ts.len()).unwrap(), ts);
    }

    #[test]
    fn decoders_never_panic_on_garbage(data in prop::collection::vec(any::<u8>(), 0..200), n in 0usize..300, ty in 1u8..=5) {
        let ty = FieldType::from_u8(ty).unwrap();
        let _ = decode_values(ty, &data, n);
        let _ = decode_timestamps(&data, n);
    }
}

#[test]
fn edge_blocks() {
    for v in [
        vec![],
        vec![1.5],
        vec![-0.0],
        vec![f64::NAN],
        vec![0.0, -0.0, 0.0],
    ] {
        let vals = Values::Float(v);
        assert_eq!(float_bits(&rt(&vals)), float_bits(&vals));
    }
    for v in [
        vec![],
        vec![i64::MIN],
        vec![i64::MIN, i64::MAX, i64::MIN, 0],
    ] {
        let vals = Values::Integer(v);
        assert_eq!(rt(&vals), vals);
    }
    // Equal timestamps and huge deltas.
    for ts in [
        vec![5i64; 1000],
        vec![i64::MIN, i64::MAX, i64::MIN],
        vec![0, i64::MAX],
    ] {
        let mut buf = Vec::new();
        encode_timestamps(&ts, &mut buf);
        assert_eq!(decode_timestamps(&buf, ts.len()).unwrap(), ts);
    }
}

#[test]
fn decimal_codec_is_compact_for_sensor_values() {
    let mut x = 5731i64;
    let v: Vec<f64> = (0..1000)
        .map(|i| {
            x += ((i * 7919) % 41) - 20;
            x as f64 / 100.0
        })
        .collect();
    let mut buf = Vec::new();
    encode_values(&Values::Float(v), &mut buf);
    assert!(buf.len() < 1000, "{} bytes for 1000 values", buf.len());
}

/// A TSBS block that came back with a zero: the first value is exact only at
/// 10^13, the second only at 10^14 (where the first's integer passes 2^53).
#[test]
fn a_value_exact_at_a_smaller_exponent_is_kept() {
    // A slow walk after it, so the decimal codec beats Gorilla on the block.
    let mut v = vec![90.1283965645679];
    v.extend((0..500).map(|j| (8_980_529_838_857_004i64 + 3 * j) as f64 / 1e14));
    let vals = Values::Float(v);
    assert_eq!(float_bits(&rt(&vals)), float_bits(&vals));
}
