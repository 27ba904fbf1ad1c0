//! CRC-32C of record batches. Nearly every batch here is a record or a few, under a hundred bytes,
//! and the `crc32c` crate, built for long buffers, spends more on setting up its three-way
//! parallel passes than on the bytes of one so short (about 170 instructions a batch; CRC checks
//! were a third of recovery's cost). Short buffers take one 8-byte step at a time on the
//! SSE 4.2 instruction; long ones, and machines without it, go to the crate.

/// Buffers up to this long take the short path.
const SHORT: usize = 256;

pub fn crc32c(bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() <= SHORT && std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE 4.2, checked just above.
        return unsafe { short_sse42(bytes) };
    }
    crc32c::crc32c(bytes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn short_sse42(bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut crc = u64::from(u32::MAX);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    let mut crc = crc as u32;
    for &b in words.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_length_agrees_with_the_crate() {
        let bytes: Vec<u8> = (0..700u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..bytes.len() {
            for start in [0, 1, 7] {
                let slice = &bytes[start..(start + len).min(bytes.len())];
                assert_eq!(super::crc32c(slice), crc32c::crc32c(slice), "{start}+{len}");
            }
        }
        assert_eq!(
            super::crc32c(b"123456789"),
            0xe306_9283,
            "the check value of CRC-32C"
        );
    }
}
