//! Number parsing for field values and timestamps.
//!
//! Plain decimals (at most 19 digits, no exponent) are read while scanning, the
//! fraction eight digits at a time (SWAR). A mantissa up to 2^53 takes Clinger's
//! exact path (`mantissa / 10^k`, both operands exact in f64, one IEEE division
//! rounds correctly); a longer one a 128-bit reciprocal of 10^k, or an exact
//! division when that could round wrongly. Anything else falls back to the
//! standard library's correctly rounded parser.

use crate::error::ParseErrorKind as E;

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a float token (`-1.5`, `.5`, `1e10`, `3`), rejecting what InfluxDB rejects.
#[inline]
pub(crate) fn parse_float(tok: &[u8]) -> Result<f64, E> {
    if let Some(v) = plain_decimal(tok) {
        return Ok(v);
    }
    slow_float(tok)
}

/// `[-]digits[.digits]` with at most 19 digits, in one pass; `None` for
/// anything else (exponents, more digits, syntax errors), which the slow path handles.
#[inline]
pub(crate) fn plain_decimal(tok: &[u8]) -> Option<f64> {
    match scan_decimal(tok, 0) {
        Some((v, end)) if end == tok.len() => Some(v),
        _ => None,
    }
}

/// Scans `[-]digits[.digits]` (at most 19 digits) from `buf[i..]` up to a
/// value delimiter (`,` space tab CR LF or the end). Returns the value and
/// the delimiter's index, or `None` when the token is anything else.
#[inline]
pub(crate) fn scan_decimal(buf: &[u8], mut i: usize) -> Option<(f64, usize)> {
    let neg = buf.get(i) == Some(&b'-');
    i += usize::from(neg);
    let n = buf.len();
    // Integer digits one by one: there are few of them in most values.
    let mut mantissa: u64 = 0;
    let mut ndigits = 0usize;
    while let Some(&c) = buf.get(i) {
        let d = c.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        if ndigits == 19 {
            return None;
        }
        mantissa = mantissa * 10 + u64::from(d);
        ndigits += 1;
        i += 1;
    }
    // Fraction digits, up to 8 at a time.
    let mut frac = 0;
    if buf.get(i) == Some(&b'.') {
        i += 1;
        loop {
            let (v, c) = digit_run(buf, i, n);
            ndigits += c;
            if ndigits > 19 {
                return None;
            }
            mantissa = mantissa * POW10_U64[c] + v;
            frac += c;
            i += c;
            if c < 8 {
                break;
            }
        }
    }
    if ndigits == 0 || buf.get(i).is_some_and(|&c| !crate::scan::VALUE.contains(c)) {
        return None;
    }
    let v = decimal_to_f64(mantissa, frac as u32);
    Some((if neg { -v } else { v }, i))
}

/// The leading ASCII digits of `buf[i..end]`, at most 8: their value and
/// count. SWAR: one 64-bit load, a few shifts and three multiplications.
#[inline(always)]
fn digit_run(buf: &[u8], i: usize, end: usize) -> (u64, usize) {
    let v = match buf.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        Some(c) => u64::from_le_bytes(*c),
        None => {
            // The last bytes of the body: pad with NULs (not digits).
            let rest = buf.get(i..).unwrap_or_default();
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(a)
        }
    };
    let hi = 0xF0F0_F0F0_F0F0_F0F0;
    let threes = 0x3030_3030_3030_3030;
    // A byte is a digit iff its high nibble is 3 and stays 3 after adding 6.
    // (A carry out of a byte >= 0xFA only reaches bytes after that non-digit.)
    let bad = ((v & hi) ^ threes) | ((v.wrapping_add(0x0606_0606_0606_0606) & hi) ^ threes);
    let count = ((bad.trailing_zeros() / 8) as usize).min(end.saturating_sub(i));
    if count == 0 {
        return (0, 0);
    }
    // Digit values, shifted so the run ends at the top byte: the bytes after it
    // fall off, and zeros (leading zero digits) come in at the bottom.
    let d = v.wrapping_sub(threes) << (8 * (8 - count));
    (swar_value(d), count)
}

/// The number whose 8 decimal digits (most significant first) are the bytes
/// of `d`, little-endian.
#[inline(always)]
fn swar_value(d: u64) -> u64 {
    // Pairwise combine: bytes -> 2-digit, then 4-digit groups, then the whole.
    let v = d * 10 + (d >> 8);
    let mask = 0x0000_00FF_0000_00FF;
    let v1 = (v & mask).wrapping_mul(100 + (1_000_000 << 32));
    let v2 = ((v >> 16) & mask).wrapping_mul(1 + (10_000 << 32));
    u64::from((v1.wrapping_add(v2) >> 32) as u32)
}

/// `m / 10^k`, correctly rounded (ties to even), for `k <= 19`.
#[inline]
pub(crate) fn decimal_to_f64(m: u64, k: u32) -> f64 {
    if m == 0 {
        return 0.0;
    }
    if m <= 1 << 53 {
        // Clinger: both operands exact, one IEEE division rounds correctly.
        return m as f64 / POW10[k as usize];
    }
    reciprocal(m, k).unwrap_or_else(|| exact_quotient(m, k))
}

const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `RECIP[k] = (ceil(2^SHIFT[k] / 10^k), SHIFT[k])` with the quotient in
/// `[2^127, 2^128)`: a 128-bit reciprocal of each power of ten, computed at
/// compile time by long division.
const RECIP: [(u128, u32); 20] = {
    let mut t = [(0u128, 0u32); 20];
    let mut k = 0;
    while k < 20 {
        let d = POW10_U64[k] as u128;
        // ceil(log2(10^k)): 10^k is a power of two only for k = 0.
        let log2 = if k == 0 { 0 } else { 128 - d.leading_zeros() };
        let shift = 127 + log2;
        // Long division of 2^shift by d, one bit at a time; r < d < 2^64.
        let mut q: u128 = 0;
        let mut r: u128 = 0;
        let mut bit = 0;
        while bit <= shift {
            r = (r << 1) | if bit == 0 { 1 } else { 0 };
            q <<= 1;
            if r >= d {
                r -= d;
                q |= 1;
            }
            bit += 1;
        }
        t[k] = (if r == 0 { q } else { q + 1 }, shift);
        k += 1;
    }
    t
};

/// Multiply by the reciprocal; `None` when the truncation error could change
/// the rounding (rare), so the caller divides exactly instead.
#[inline]
fn reciprocal(m: u64, k: u32) -> Option<f64> {
    let (recip, shift) = RECIP[k as usize];
    let lz = m.leading_zeros();
    let mn = u128::from(m << lz);
    // 64 x 128 -> 192-bit product; keep its top 128 bits.
    let lo = mn * (recip & u128::from(u64::MAX));
    let hi = mn * (recip >> 64);
    let top = hi + (lo >> 64);
    // top is in [2^126, 2^128): the 53-bit mantissa and the rounding bits
    // below it sit in its high word; the low word only breaks near-ties.
    let (th, tl) = ((top >> 64) as u64, top as u64);
    let cut = 11 - th.leading_zeros();
    let rem = th & ((1u64 << cut) - 1);
    let half = 1u64 << (cut - 1);
    // `top` may exceed the truth by one unit: too close to exact or to a tie.
    if (rem == 0 || rem == half) && tl <= 1 {
        return None;
    }
    let mut mant = (th >> cut) + u64::from(rem >= half);
    // value = top * 2^(64 - lz - shift)
    let mut e = cut as i32 + 128 - lz as i32 - shift as i32;
    if mant == 1 << 53 {
        mant >>= 1;
        e += 1;
    }
    Some(from_parts(mant, e))
}

/// Exact `m / 10^k` by 128-bit division, rounding with the remainder.
#[cold]
fn exact_quotient(m: u64, k: u32) -> f64 {
    let d = u128::from(POW10_U64[k as usize]);
    let s = 64 + m.leading_zeros();
    let n = u128::from(m) << s;
    let q = n / d;
    let r = n - q * d;
    let bits = 128 - q.leading_zeros();
    let cut = bits - 53;
    let mut mant = (q >> cut) as u64;
    let rem = q & ((1u128 << cut) - 1);
    let half = 1u128 << (cut - 1);
    if rem > half || (rem == half && (r != 0 || mant & 1 == 1)) {
        mant += 1;
    }
    let mut e = cut as i32 - s as i32;
    if mant == 1 << 53 {
        mant >>= 1;
        e += 1;
    }
    from_parts(mant, e)
}

/// `mant * 2^e` for `mant` in `[2^52, 2^53)` and a normal result.
#[inline]
fn from_parts(mant: u64, e: i32) -> f64 {
    let biased = (e + 52 + 1023) as u64;
    f64::from_bits((biased << 52) | (mant & ((1 << 52) - 1)))
}

#[cold]
fn slow_float(tok: &[u8]) -> Result<f64, E> {
    // InfluxDB's character rules: digits, one '.', 'e'/'E' not first, a sign only
    // at the start or right after the exponent mark.
    let body = tok.strip_prefix(b"-").unwrap_or(tok);
    let mut dot = false;
    let mut exp = false;
    let mut digits = 0usize;
    for (i, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => digits += 1,
            b'.' if !dot && !exp => dot = true,
            b'e' | b'E' if i > 0 && !exp => exp = true,
            b'+' | b'-' if i > 0 && matches!(body[i - 1], b'e' | b'E') => {}
            _ => return Err(E::InvalidNumber),
        }
    }
    if digits == 0 {
        return Err(E::InvalidNumber);
    }
    let s = std::str::from_utf8(tok).map_err(|_| E::InvalidNumber)?;
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(E::InvalidFloat),
        Err(_) => Err(E::InvalidNumber),
    }
}

/// Parses `[-]digits` as i64 with overflow detection. `None` on syntax errors,
/// `Some(None)` on overflow.
#[inline]
pub(crate) fn parse_i64(tok: &[u8]) -> Option<Option<i64>> {
    parse_i64_in(tok, 0, tok.len())
}

/// [`parse_i64`] of `buf[i..end]`; reading `buf` past `end` lets the digit
/// loads stay whole words.
#[inline]
pub(crate) fn parse_i64_in(buf: &[u8], i: usize, end: usize) -> Option<Option<i64>> {
    let neg = buf.get(i) == Some(&b'-') && i < end;
    let m = match parse_digits(buf, i + usize::from(neg), end)? {
        Some(m) => m,
        None => return Some(None),
    };
    Some(if neg {
        // -2^63 is the one magnitude that fits only negated.
        (m <= 1 << 63).then(|| (m as i64).wrapping_neg())
    } else {
        i64::try_from(m).ok()
    })
}

/// Parses `digits` as u64. `None` on syntax errors, `Some(None)` on overflow.
#[inline]
pub(crate) fn parse_u64(tok: &[u8]) -> Option<Option<u64>> {
    parse_digits(tok, 0, tok.len())
}

/// `buf[i..end]` as a decimal magnitude: `None` if it is empty or not all
/// digits, `Some(None)` if it exceeds u64.
#[inline]
fn parse_digits(buf: &[u8], i: usize, end: usize) -> Option<Option<u64>> {
    if i >= end {
        return None;
    }
    if end - i <= 19 {
        // At most 19 digits: cannot overflow u64.
        let mut v = 0u64;
        let mut j = i;
        while j < end {
            let (x, c) = digit_run(buf, j, end);
            if c == 0 {
                return None;
            }
            v = v * POW10_U64[c] + x;
            j += c;
        }
        return Some(Some(v));
    }
    let mut v: u64 = 0;
    let mut overflow = false;
    for &c in &buf[i..end] {
        if !c.is_ascii_digit() {
            return None;
        }
        if !overflow {
            match v
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(c - b'0')))
            {
                Some(x) => v = x,
                None => overflow = true,
            }
        }
    }
    Some(if overflow { None } else { Some(v) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_paths_match_std_exactly() {
        for s in [
            "0",
            "-0",
            "1",
            "58.1317132304976",
            "0.1",
            "123456789012345",
            "-3.25",
            ".5",
            "5.",
            "0.000000000000001",
            "999999999999999",
        ] {
            let ours = parse_float(s.as_bytes()).unwrap();
            let std: f64 = s.parse().unwrap();
            assert_eq!(ours.to_bits(), std.to_bits(), "{s}");
        }
    }

    /// The reciprocal and exact-division paths against std on random decimals of
    /// up to 19 digits with every decimal-point position.
    #[test]
    fn random_decimals_match_std() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 19) as usize;
            let m = x % 10u64.pow(digits as u32);
            let k = ((x >> 40) % (digits as u64 + 1)) as usize;
            let s = format!("{m:0digits$}");
            let (a, b) = s.split_at(digits - k);
            let tok = format!("{a}.{b}");
            let std: f64 = tok.parse().unwrap();
            assert_eq!(
                parse_float(tok.as_bytes()).unwrap().to_bits(),
                std.to_bits(),
                "{tok}"
            );
            if m > 0 {
                assert_eq!(
                    exact_quotient(m, k as u32).to_bits(),
                    std.to_bits(),
                    "{tok}"
                );
            }
            if let Some(v) = reciprocal(m.max(1 << 54), k as u32) {
                let want = exact_quotient(m.max(1 << 54), k as u32);
                assert_eq!(v.to_bits(), want.to_bits(), "{m} {k}");
            }
        }
    }

    #[test]
    fn digit_runs_swar() {
        for (s, end, want) in [
            ("00000000", 8, (0, 8)),
            ("12345678", 8, (12_345_678, 8)),
            ("99999999x", 9, (99_999_999, 8)),
            ("1234567a", 8, (1_234_567, 7)),
            ("12345.78", 8, (12_345, 5)),
            ("/2345678", 8, (0, 0)),
            (":2345678", 8, (0, 0)),
            ("1234 678", 8, (1234, 4)),
            ("12", 2, (12, 2)),
            ("123456", 3, (123, 3)),
            ("9\u{ff}\u{ff}1", 4, (9, 1)),
        ] {
            assert_eq!(digit_run(s.as_bytes(), 0, end), want, "{s}");
        }
        // Every length and offset against a plain loop.
        let text = b"0123456789876543210.5,42i 7\xfa\xff12\xfa3";
        for i in 0..text.len() {
            for end in i..=text.len() {
                let run = text[i..end]
                    .iter()
                    .take(8)
                    .take_while(|c| c.is_ascii_digit());
                let want = run.fold((0u64, 0usize), |(v, c), &d| {
                    (v * 10 + u64::from(d - b'0'), c + 1)
                });
                assert_eq!(digit_run(text, i, end), want, "{i}..{end}");
            }
        }
    }

    #[test]
    fn slow_path_and_rejections() {
        assert_eq!(parse_float(b"1e10").unwrap(), 1e10);
        assert_eq!(parse_float(b"-1.5E-3").unwrap(), -1.5e-3);
        assert_eq!(
            parse_float(b"1234567890123456789").unwrap(),
            1234567890123456789.0
        );
        assert_eq!(parse_float(b"1e400"), Err(E::InvalidFloat));
        for bad in [
            "-", ".", "-.", "1.1.1", "e5", "1e", "1x", "NaN", "Inf", "1-2", "--1",
        ] {
            assert!(parse_float(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_at_the_edges() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(Some(i64::MIN)));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(Some(i64::MAX)));
        assert_eq!(parse_i64(b"9223372036854775808"), Some(None));
        assert_eq!(parse_i64(b"-9223372036854775809"), Some(None));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"1a"), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(Some(u64::MAX)));
        assert_eq!(parse_u64(b"18446744073709551616"), Some(None));
        assert_eq!(parse_u64(b"-1"), None);
    }
}
