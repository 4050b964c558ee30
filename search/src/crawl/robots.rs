//! `robots.txt` rules, shared by the crawl and the page fetcher's per-origin cache.

/// `robots.txt` rules for our user agent (or `*`): the longest matching rule wins, `Allow` on a tie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Robots {
    rules: Vec<(bool, String)>,
}

impl Robots {
    /// Parses `text`, keeping the group that names `agent` (case-insensitive substring) or else `*`.
    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        let mut specific: Vec<(bool, String)> = Vec::new();
        let mut general: Vec<(bool, String)> = Vec::new();
        let mut group_agents: Vec<String> = Vec::new();
        let mut in_rules = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let field = field.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            match field.as_str() {
                "user-agent" => {
                    if in_rules {
                        group_agents.clear();
                        in_rules = false;
                    }
                    group_agents.push(value.to_ascii_lowercase());
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    if value.is_empty() {
                        continue;
                    }
                    let rule = (field == "allow", value);
                    if group_agents
                        .iter()
                        .any(|a| a != "*" && !a.is_empty() && agent.contains(a.as_str()))
                    {
                        specific.push(rule.clone());
                    }
                    if group_agents.iter().any(|a| a == "*") {
                        general.push(rule);
                    }
                }
                _ => {}
            }
        }
        Robots {
            rules: if specific.is_empty() {
                general
            } else {
                specific
            },
        }
    }

    /// Whether `path` (with its query) may be fetched.
    pub fn allows(&self, path: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (allow, prefix) in &self.rules {
            let pattern = prefix.trim_end_matches('$');
            let matches = if pattern.contains('*') {
                wildcard_prefix_match(pattern, path)
            } else {
                path.starts_with(pattern)
            };
            if matches {
                let better = match best {
                    None => true,
                    Some((length, allowed)) => {
                        prefix.len() > length || (prefix.len() == length && *allow && !allowed)
                    }
                };
                if better {
                    best = Some((prefix.len(), *allow));
                }
            }
        }
        best.is_none_or(|(_, allowed)| allowed)
    }
}

/// `*` matches any run of characters; the pattern is a prefix.
fn wildcard_prefix_match(pattern: &str, path: &str) -> bool {
    let mut rest = path;
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return true;
    };
    let Some(after) = rest.strip_prefix(first) else {
        return false;
    };
    rest = after;
    for part in parts {
        match rest.find(part) {
            Some(index) => rest = &rest[index + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_rules() {
        let robots = Robots::parse(
            "User-agent: *\nDisallow: /private/\nAllow: /private/open\nDisallow: /*.pdf$\n\nUser-agent: otherbot\nDisallow: /\n",
            "aiex/0.1.0",
        );
        assert!(robots.allows("/guide/index.html"));
        assert!(!robots.allows("/private/secret.html"));
        assert!(robots.allows("/private/open/page.html"));
        assert!(!robots.allows("/files/book.pdf"));
        let specific = Robots::parse(
            "User-agent: aiex\nDisallow: /\nUser-agent: *\nDisallow:\n",
            "aiex/0.1.0",
        );
        assert!(!specific.allows("/anything"));
        assert!(Robots::parse("", "aiex").allows("/x"));
    }
}
