use std::time::Duration;

// A literal zero is refused where it is written; a constant expression
// that comes to zero is refused when the constant is evaluated.
const NONE: Duration = Duration::ZERO;

#[larder::memoize(ttl = NONE)]
async fn never_kept(n: u64) -> u64 {
    n
}

fn main() {}
