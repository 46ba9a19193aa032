struct Pool;

#[larder::memoize(ttl = "5m", skip(db))]
async fn profile(pool: &Pool, id: u64) -> String {
    let _ = pool;
    format!("user {id}")
}

#[larder::memoize(ttl = "5m")]
fn sync_profile(id: u64) -> String {
    format!("user {id}")
}

#[larder::memoize(ttl = "5m")]
async fn generic_profile<T: serde::Serialize>(id: T) -> String {
    let _ = id;
    String::new()
}

#[larder::memoize(namespace = "profiles")]
async fn no_ttl(id: u64) -> String {
    format!("user {id}")
}

#[larder::memoize(ttl = "5m", vary = ["accept"])]
async fn http_option(id: u64) -> String {
    format!("user {id}")
}

struct Service;

impl Service {
    #[larder::memoize(ttl = "5m")]
    async fn method(&self, id: u64) -> String {
        format!("user {id}")
    }
}

fn main() {}
