//! Request bodies: bounded reads, gzip inflated under the same bound.
//!
//! InfluxDB 1.x checks `max-body-size` on the compressed bytes only, so a small
//! gzip bomb inflates without limit. Here the limit applies to the bytes as
//! received *and* to the inflated bytes.

use std::io::Read;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("Request Entity Too Large")]
    TooLarge,
    #[error("{0}")]
    BadGzip(String),
    /// The client did not send the whole body within `body-read-timeout`.
    #[error("timed out reading the request body")]
    ReadTimeout,
}

/// Inflates `compressed` (one or more gzip members), failing as soon as the
/// output would pass `limit` bytes. Memory stays bounded by `limit`.
pub fn gunzip_bounded(compressed: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut dec = flate2::read::MultiGzDecoder::new(compressed);
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = dec
            .read(&mut buf)
            .map_err(|e| BodyError::BadGzip(e.to_string()))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_within_the_limit() {
        let body = b"cpu v=1 1\n".repeat(1000);
        assert_eq!(gunzip_bounded(&gz(&body), body.len()).unwrap(), body);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compress to ~64 KiB.
        let bomb = gz(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100 << 10);
        assert_eq!(gunzip_bounded(&bomb, 1 << 20), Err(BodyError::TooLarge));
    }

    #[test]
    fn concatenated_members_are_read() {
        let mut two = gz(b"a v=1 1\n");
        two.extend(gz(b"b v=2 2\n"));
        assert_eq!(gunzip_bounded(&two, 1024).unwrap(), b"a v=1 1\nb v=2 2\n");
    }

    #[test]
    fn invalid_gzip_is_a_bad_request() {
        assert!(matches!(
            gunzip_bounded(b"not gzip", 1024),
            Err(BodyError::BadGzip(_))
        ));
        let mut cut = gz(&b"x".repeat(10_000));
        cut.truncate(cut.len() / 2);
        assert!(matches!(
            gunzip_bounded(&cut, 1 << 20),
            Err(BodyError::BadGzip(_))
        ));
    }
}
