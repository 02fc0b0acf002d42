//! Invalidation paths: how an S3 key becomes a CloudFront path, and how many paths
//! collapse into wildcard prefixes when a batch touches too many objects.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::collections::{BTreeMap, BTreeSet};

/// CloudFront's rule: URL-encode non-ASCII and RFC 1738 "unsafe" characters and nothing
/// else (an over-encoded path silently invalidates nothing). `*` is added because it is a
/// wildcard in an invalidation path, so a literal `*` in a key must not act as one; `?`
/// because it would start a query string.
const CLOUDFRONT_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'~')
    .add(b'*')
    .add(b'?');

/// Hard CloudFront limit on paths in one invalidation batch.
pub const MAX_PATHS_PER_INVALIDATION: usize = 3000;

/// `/` + the decoded key, encoded the way CloudFront expects.
pub fn invalidation_path(key: &str) -> String {
    format!("/{}", utf8_percent_encode(key, CLOUDFRONT_UNSAFE))
}

/// Reduces `paths` to at most `threshold` entries by replacing the largest groups of
/// siblings with `prefix/*`, deepest directories first, so that as little as possible is
/// invalidated beyond what changed. Ends at `/*` in the worst case.
pub fn collapse(paths: BTreeSet<String>, threshold: usize) -> Vec<String> {
    let threshold = threshold.max(1);
    let mut entries = paths;
    if entries.len() <= threshold {
        return entries.into_iter().collect();
    }
    let deepest = entries.iter().map(|p| depth(p)).max().unwrap_or(0);
    for level in (0..=deepest).rev() {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in &entries {
            if let Some(prefix) = ancestor(entry, level) {
                groups.entry(prefix).or_default().push(entry.clone());
            }
        }
        let mut groups: Vec<_> = groups.into_iter().filter(|(_, m)| m.len() > 1).collect();
        // Largest groups first: each collapse removes (members - 1) entries.
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        for (prefix, members) in groups {
            if entries.len() <= threshold {
                return entries.into_iter().collect();
            }
            for member in members {
                entries.remove(&member);
            }
            entries.insert(format!("{prefix}*"));
        }
        if entries.len() <= threshold {
            break;
        }
    }
    if entries.len() > threshold {
        return vec!["/*".to_owned()];
    }
    entries.into_iter().collect()
}

/// Number of directory levels below the root: `/a/b/c.html` → 2.
fn depth(path: &str) -> usize {
    path.matches('/').count().saturating_sub(1)
}

/// The directory prefix of `path` at `level` (`/` is level 0), if `path` lies below it.
fn ancestor(path: &str, level: usize) -> Option<String> {
    let end = path.match_indices('/').nth(level)?.0 + 1;
    let prefix = &path[..end];
    let rest = &path[end..];
    (!rest.is_empty() && rest != "*").then(|| prefix.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_cloudfront_expects_and_nothing_else() {
        assert_eq!(invalidation_path("index.html"), "/index.html");
        assert_eq!(
            invalidation_path("my docs/a b.html"),
            "/my%20docs/a%20b.html"
        );
        assert_eq!(
            invalidation_path("café/日本.png"),
            "/caf%C3%A9/%E6%97%A5%E6%9C%AC.png"
        );
        assert_eq!(invalidation_path("~user/star*.txt"), "/%7Euser/star%2A.txt");
        assert_eq!(invalidation_path("q?x=1#frag%"), "/q%3Fx=1%23frag%25");
        // Safe characters stay as they are.
        assert_eq!(
            invalidation_path("a-b_c.d/e+f=g&h,i;j:k@l$m!n'o(p)"),
            "/a-b_c.d/e+f=g&h,i;j:k@l$m!n'o(p)"
        );
    }

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn under_the_threshold_nothing_collapses() {
        let paths = set(&["/a/1", "/a/2", "/b"]);
        assert_eq!(collapse(paths, 3), ["/a/1", "/a/2", "/b"]);
    }

    #[test]
    fn largest_deepest_group_collapses_first() {
        let paths = set(&[
            "/img/x/1.png",
            "/img/x/2.png",
            "/img/x/3.png",
            "/img/y/1.png",
            "/img/y/2.png",
            "/index.html",
        ]);
        assert_eq!(
            collapse(paths, 4),
            ["/img/x/*", "/img/y/1.png", "/img/y/2.png", "/index.html"]
        );
    }

    #[test]
    fn collapses_upwards_until_under_threshold() {
        let paths = set(&[
            "/img/x/1.png",
            "/img/x/2.png",
            "/img/y/1.png",
            "/img/y/2.png",
            "/css/a.css",
            "/css/b.css",
        ]);
        assert_eq!(
            collapse(paths.clone(), 3),
            ["/css/*", "/img/x/*", "/img/y/*"]
        );
        assert_eq!(collapse(paths.clone(), 2), ["/css/*", "/img/*"]);
        assert_eq!(collapse(paths, 1), ["/*"]);
    }

    #[test]
    fn many_paths_fit_the_cloudfront_limit() {
        let paths: BTreeSet<String> = (0..10_000)
            .map(|i| format!("/d{}/f{i}.html", i % 7))
            .collect();
        let collapsed = collapse(paths, 100);
        assert_eq!(collapsed.len(), 7);
        assert!(collapsed.iter().all(|p| p.ends_with("/*")));
    }
}
