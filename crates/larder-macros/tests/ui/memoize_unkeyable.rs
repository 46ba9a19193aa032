/// A database pool: not serializable.
struct Pool;

#[larder::memoize(ttl = "5m")]
async fn profile(pool: &Pool, id: u64) -> String {
    let _ = pool;
    format!("user {id}")
}

fn main() {}
