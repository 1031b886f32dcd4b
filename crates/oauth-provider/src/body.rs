//! Reading a body with a size cap enforced while it is read: a body
//! sent without `Content-Length` (chunked) is refused as soon as it passes
//! the cap, never buffered whole first.

use futures_util::stream::{Stream, StreamExt};

/// Collects `chunks` into one body, or `Ok(None)` as soon as more than `cap`
/// bytes have arrived (the rest is never read). A chunk that fails ends the
/// read with its error.
// Used by the `workers` glue; tested natively either way.
#[cfg_attr(not(feature = "workers"), allow(dead_code))]
pub async fn collect_capped<S, E>(chunks: S, cap: usize) -> Result<Option<Vec<u8>>, E>
where
    S: Stream<Item = Result<Vec<u8>, E>>,
{
    let mut chunks = std::pin::pin!(chunks);
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if chunk.len() > cap - body.len() {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures_util::stream;
    use std::cell::Cell;

    fn chunks(sizes: &[usize]) -> Vec<Result<Vec<u8>, String>> {
        sizes.iter().map(|&n| Ok(vec![b'x'; n])).collect()
    }

    #[test]
    fn bodies_up_to_the_cap_are_read_whole() {
        assert_eq!(block_on(collect_capped(stream::iter(chunks(&[])), 10)), Ok(Some(vec![])));
        assert_eq!(block_on(collect_capped(stream::iter(chunks(&[4, 6])), 10)), Ok(Some(vec![b'x'; 10])));
        assert_eq!(block_on(collect_capped(stream::iter(chunks(&[0, 3, 0])), 3)), Ok(Some(vec![b'x'; 3])));
    }

    #[test]
    fn reading_stops_at_the_first_chunk_past_the_cap() {
        let pulled = Cell::new(0);
        // An endless body (as a chunked upload may be): refused after 11 bytes, the rest never pulled.
        let endless = stream::repeat_with(|| {
            pulled.set(pulled.get() + 1);
            Ok::<_, String>(vec![b'x'; 4])
        });
        assert_eq!(block_on(collect_capped(endless, 10)), Ok(None));
        assert_eq!(pulled.get(), 3, "stopped at the chunk that crossed the cap");
        assert_eq!(block_on(collect_capped(stream::iter(chunks(&[11])), 10)), Ok(None));
        assert_eq!(block_on(collect_capped(stream::iter(chunks(&[10, 1])), 10)), Ok(None));
    }

    #[test]
    fn a_failing_chunk_is_an_error() {
        let s = stream::iter(vec![Ok(vec![1]), Err("reset".to_owned()), Ok(vec![2])]);
        assert_eq!(block_on(collect_capped(s, 10)), Err("reset".to_owned()));
    }
}
