//! The one `retry-after` parser: delta-seconds or an HTTP date, and `retry-after-ms`.

use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, RETRY_AFTER};

/// How long a response asks to wait: `retry-after-ms` (milliseconds, a non-standard header some
/// LLM providers send) when it is usable, else `retry-after`.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let millis = text("retry-after-ms")
        .and_then(|value| value.parse::<f64>().ok())
        .and_then(|ms| non_negative_seconds(ms / 1000.0));
    if millis.is_some() {
        return millis;
    }
    parse_retry_after(text(RETRY_AFTER.as_str())?, SystemTime::now())
}

/// A `retry-after` value: delta-seconds (fractions accepted) or an HTTP date, seen at `now`. A
/// date in the past means no wait; a negative, unreadable or absurdly large value is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return non_negative_seconds(seconds);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn non_negative_seconds(seconds: f64) -> Option<Duration> {
    if seconds < 0.0 {
        return None;
    }
    // Also refuses NaN, infinities and values beyond `Duration`.
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().expect("header value"));
        }
        headers
    }

    #[test]
    fn delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("date");
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        // The obsolete forms HTTP still accepts.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn garbage_is_ignored() {
        let now = SystemTime::now();
        for value in [
            "",
            "soon",
            "-1",
            "NaN",
            "inf",
            "1e300",
            "12 seconds",
            "Wed, 99 Foo",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(retry_after(&HeaderMap::new()), None);
        assert_eq!(
            retry_after(&header(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&header(&[("retry-after", "2"), ("retry-after-ms", "150")])),
            Some(Duration::from_millis(150))
        );
        assert_eq!(
            retry_after(&header(&[("retry-after", "2"), ("retry-after-ms", "x")])),
            Some(Duration::from_secs(2)),
            "an unusable retry-after-ms falls back to retry-after"
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&header(&[("retry-after", &later)])).expect("date");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(retry_after(&header(&[("retry-after", "later")])), None);
    }
}
