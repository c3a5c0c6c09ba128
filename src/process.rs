//! The standard `process_*` metrics, read from `/proc/self` on each scrape.
//! On systems without procfs the family is simply absent.
//!
//! CPU times in `/proc/self/stat` are in USER_HZ ticks, which the kernel's ABI
//! fixes at 100 on every mainstream Linux architecture (the value `sysconf`
//! would return); memory comes from `/proc/self/statm` in pages of
//! `sysconf(_SC_PAGESIZE)`.

use std::sync::OnceLock;

use crate::metrics::{BaseUnit, Desc, Exposition};

const USER_HZ: f64 = 100.0;

pub const CPU: Desc =
    Desc::counter("process_cpu_seconds_total", "Total user and system CPU time spent by the exporter in seconds.")
        .unit(BaseUnit::Seconds);
pub const RSS: Desc = Desc::gauge("process_resident_memory_bytes", "Resident memory size of the exporter in bytes.")
    .unit(BaseUnit::Bytes);
pub const VSZ: Desc =
    Desc::gauge("process_virtual_memory_bytes", "Virtual memory size of the exporter in bytes.").unit(BaseUnit::Bytes);
pub const OPEN_FDS: Desc = Desc::gauge("process_open_fds", "Number of open file descriptors of the exporter.");
pub const MAX_FDS: Desc = Desc::gauge("process_max_fds", "Maximum number of open file descriptors (soft limit).");
pub const START: Desc =
    Desc::gauge("process_start_time_seconds", "Start time of the exporter since the Unix epoch in seconds.")
        .unit(BaseUnit::Seconds);

/// Every descriptor this module emits.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&CPU, &RSS, &VSZ, &OPEN_FDS, &MAX_FDS, &START]
}

/// Adds whatever `/proc/self` can tell; silently skips what it cannot.
pub fn encode(out: &mut Exposition) {
    let mut buf = [0u8; 4096];
    if let Some(stat) = read_small("/proc/self/stat", &mut buf) {
        if let Some(fields) = stat_fields(stat) {
            if let (Some(utime), Some(stime)) = (field_f64(&fields, 14), field_f64(&fields, 15)) {
                out.add_plain(&CPU, (utime + stime) / USER_HZ);
            }
            static START_TIME: OnceLock<Option<f64>> = OnceLock::new();
            let start = *START_TIME.get_or_init(|| Some(boot_time()? + field_f64(&fields, 22)? / USER_HZ));
            if let Some(start) = start {
                out.add_plain(&START, start);
            }
        }
    }
    // statm: sizes in pages; one small read instead of the whole of /proc/self/status.
    if let Some(statm) = read_small("/proc/self/statm", &mut buf) {
        let mut pages = statm.split_ascii_whitespace().map(|v| v.parse::<u64>().ok());
        let (size, resident) = (pages.next().flatten(), pages.next().flatten());
        let page = page_size();
        if let Some(resident) = resident {
            out.add_plain(&RSS, resident.saturating_mul(page));
        }
        if let Some(size) = size {
            out.add_plain(&VSZ, size.saturating_mul(page));
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        out.add_plain(&OPEN_FDS, dir.count() as u64);
    }
    if let Some(max) = max_fds() {
        out.add_plain(&MAX_FDS, max);
    }
}

/// Reads a small procfs file with one `read` into `buf` (procfs files
/// return their whole content in one read when it fits): no size probe, no
/// growing buffer, as `read_to_string` would do for a file of size 0.
fn read_small<'a>(path: &str, buf: &'a mut [u8]) -> Option<&'a str> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(buf).ok()?;
    std::str::from_utf8(buf.get(..n)?).ok()
}

/// The page size, for statm (4 KiB on x86_64; 16 or 64 KiB on some arm64).
fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    *PAGE.get_or_init(|| u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096))
}

/// The soft open-files limit; read from /proc/self/limits at most once a
/// minute (it changes only through prlimit from outside).
fn max_fds() -> Option<u64> {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static CACHE: Mutex<Option<(Instant, Option<u64>)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, value)) = *cache {
        if at.elapsed() < Duration::from_secs(60) {
            return value;
        }
    }
    let value = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| max_open_files(&l));
    *cache = Some((Instant::now(), value));
    value
}

fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    let mut fields = vec![stat.get(..close)?.split_whitespace().next()?, "comm"];
    fields.extend(stat.get(close + 1..)?.split_whitespace());
    Some(fields)
}

fn field_f64(fields: &[&str], number: usize) -> Option<f64> {
    fields.get(number - 1)?.parse().ok()
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_spaces_in_the_command_name() {
        let stat = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 1000 0 0";
        let f = stat_fields(stat).expect("parses");
        assert_eq!(f[0], "42");
        assert_eq!(field_f64(&f, 14), Some(250.0));
        assert_eq!(field_f64(&f, 15), Some(50.0));
        assert_eq!(field_f64(&f, 22), Some(1000.0));
        assert!(stat_fields("garbage").is_none());
    }

    #[test]
    fn live_process_metrics_are_present_on_linux() {
        let mut e = Exposition::new();
        encode(&mut e);
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(e.get("process_resident_memory_bytes", &[]).is_some_and(|v| v.as_f64() > 0.0));
            assert!(e.get("process_open_fds", &[]).is_some_and(|v| v.as_f64() >= 3.0));
            assert!(e.get("process_start_time_seconds", &[]).is_some_and(|v| v.as_f64() > 1.6e9));
        }
    }

    #[test]
    fn limits_parse() {
        let limits = "Limit Soft Limit Hard Limit Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }
}
