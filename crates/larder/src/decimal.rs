//! Decimal digits without the formatting machinery: field values the
//! cache writes on every response (`max-age`, `ttl`, a port) are numbers.

/// The decimal digits of `n`, written at the end of `buf`.
pub(crate) fn digits(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut v = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::digits;

    #[test]
    fn digits_are_the_decimal_form() {
        for n in [0, 7, 10, 65_535, 1_000_000, u64::MAX] {
            let mut buf = [0; 20];
            assert_eq!(digits(n, &mut buf), n.to_string().as_bytes());
        }
    }
}
