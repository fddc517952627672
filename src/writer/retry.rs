//! Backoff between retries: exponential from the initial delay, capped, with jitter so many
//! sinks restarting together do not hammer a recovering InfluxDB in step.

use std::time::Duration;

/// Delay after the `failures`-th failure in a row (1-based): a random point in the upper half
/// of `min(initial * 2^(failures-1), max)`, and never less than the server's `Retry-After`.
pub fn backoff(
    initial: Duration,
    max: Duration,
    failures: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = initial
        .checked_mul(1u32 << failures.saturating_sub(1).min(20))
        .unwrap_or(max)
        .min(max);
    let half = exp / 2;
    let jittered = half + half.mul_f64(fastrand::f64());
    jittered.max(retry_after.unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let ms = Duration::from_millis;
        for _ in 0..100 {
            let b1 = backoff(ms(200), ms(10_000), 1, None);
            assert!(b1 >= ms(100) && b1 <= ms(200), "{b1:?}");
            let b3 = backoff(ms(200), ms(10_000), 3, None);
            assert!(b3 >= ms(400) && b3 <= ms(800), "{b3:?}");
            let big = backoff(ms(200), ms(10_000), 40, None);
            assert!(big >= ms(5_000) && big <= ms(10_000), "{big:?}");
            assert_eq!(backoff(ms(200), ms(10_000), 1, Some(ms(3_000))), ms(3_000));
        }
    }
}
