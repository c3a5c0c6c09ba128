//! The one golden-file comparison: `UPDATE_GOLDEN=1` rewrites the file, and a
//! mismatch fails with a line diff (first differing lines, with line numbers)
//! instead of the whole text, so a reviewer sees what changed.

use std::path::Path;

/// Whether this run rewrites golden files instead of checking them.
pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `actual` with the file at `path` (or writes it when updating).
pub fn assert_golden(path: &Path, actual: &str) {
    if updating() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if expected != actual {
        panic!(
            "{} differs from the output; rerun with UPDATE_GOLDEN=1 and review `git diff`\n{}",
            path.display(),
            line_diff(&expected, actual, 40)
        );
    }
}

/// A compact line diff: each line only in `expected` as `-`, only in `actual`
/// as `+`, with its line number, at most `limit` lines (LCS on lines).
pub fn line_diff(expected: &str, actual: &str, limit: usize) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Trim the common prefix and suffix first: golden files differ in few lines.
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut out = Vec::new();
    if a_mid.len() * b_mid.len() > 4_000_000 {
        out.extend(a_mid.iter().enumerate().map(|(i, l)| format!("-{:>5} {l}", prefix + i + 1)));
        out.extend(b_mid.iter().enumerate().map(|(i, l)| format!("+{:>5} {l}", prefix + i + 1)));
    } else {
        let (n, m) = (a_mid.len(), b_mid.len());
        let mut lcs = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i][j] = if a_mid[i] == b_mid[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && a_mid[i] == b_mid[j] {
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
                out.push(format!("-{:>5} {}", prefix + i + 1, a_mid[i]));
                i += 1;
            } else {
                out.push(format!("+{:>5} {}", prefix + j + 1, b_mid[j]));
                j += 1;
            }
        }
    }
    let total = out.len();
    out.truncate(limit);
    if total > limit {
        out.push(format!("... {} more differing lines", total - limit));
    }
    out.join("\n")
}

#[test]
fn line_diff_shows_only_changed_lines_with_numbers() {
    let d = line_diff("a\nb\nc\nd\n", "a\nB\nc\nd\ne\n", 10);
    assert_eq!(d, "-    2 b\n+    2 B\n+    5 e");
    assert_eq!(line_diff("same\n", "same\n", 10), "");
}
