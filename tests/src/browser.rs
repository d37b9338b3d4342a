//! A real headless browser for the tests that check what a person would see: Debian's
//! `chromium`, driven from its command line (`--dump-dom`, `--screenshot`), so a page's
//! scripts really run and its pixels are really drawn.
//!
//! `.ci/run` installs `chromium` when it is missing; a test that needs it fails with a sentence
//! saying so rather than skipping.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser binary: `$CHROMIUM`, else `chromium` on the `PATH`.
fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"))
}

/// Runs headless Chromium with `args` then `url`, with a private profile directory, and
/// returns its standard output. `budget_ms` is the virtual time the page gets to run its
/// scripts (timers and fetches) before the DOM is dumped or the screenshot taken.
fn run(args: &[String], url: &str, budget_ms: u32) -> Result<Vec<u8>, String> {
    let profile = tempfile_dir("chromium-profile")?;
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(args)
        .arg(url)
        .output()
        .map_err(|e| {
            format!(
                "can't start {}: {e}; install Debian's `chromium` (`.ci/run` does) or set \
                 $CHROMIUM to a Chromium binary",
                chromium().display()
            )
        })?;
    let _ = std::fs::remove_dir_all(&profile);
    if !output.status.success() {
        return Err(format!(
            "chromium exited with {} on {url}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}

/// The DOM of `url` after its scripts ran for `budget_ms` of virtual time, serialised as HTML.
pub fn dump_dom(url: &str, budget_ms: u32) -> Result<String, String> {
    let out = run(&["--dump-dom".to_owned()], url, budget_ms)?;
    String::from_utf8(out).map_err(|e| format!("chromium's DOM dump is not UTF-8: {e}"))
}

/// Renders `url` at `width`×`height` and writes a PNG screenshot to `png`.
pub fn screenshot(
    url: &str,
    png: &Path,
    width: u32,
    height: u32,
    budget_ms: u32,
) -> Result<(), String> {
    run(
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
        ],
        url,
        budget_ms,
    )?;
    if !png.exists() {
        return Err(format!("chromium wrote no screenshot to {}", png.display()));
    }
    Ok(())
}

/// What a screenshot shows, roughly: how many distinct colours, and the share of pixels that
/// differ from the most common one (the background).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ink {
    /// Distinct RGB colours in the picture.
    pub colours: usize,
    /// Fraction of pixels (0..=1) not of the most common colour.
    pub coverage: f64,
}

impl Ink {
    /// A page with something drawn on it: more than a handful of colours (text is
    /// anti-aliased) and at least 0.5 % of the pixels off the background.
    pub fn is_non_blank(&self) -> bool {
        self.colours > 8 && self.coverage > 0.005
    }
}

/// Decodes a PNG and measures its [`Ink`].
pub fn ink(png: &Path) -> Result<Ink, String> {
    let file =
        std::fs::File::open(png).map_err(|e| format!("can't open {}: {e}", png.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("{} is not a PNG: {e}", png.display()))?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("can't decode {}: {e}", png.display()))?;
    let channels = frame.color_type.samples();
    let pixels = &buf[..frame.buffer_size()];
    let mut counts = std::collections::HashMap::<[u8; 3], usize>::new();
    let mut total = 0usize;
    for px in pixels.chunks_exact(channels) {
        let rgb = match channels {
            1 | 2 => [px[0], px[0], px[0]],
            _ => [px[0], px[1], px[2]],
        };
        *counts.entry(rgb).or_default() += 1;
        total += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    Ok(Ink {
        colours: counts.len(),
        coverage: if total == 0 {
            0.0
        } else {
            (total - background) as f64 / total as f64
        },
    })
}

/// A fresh private directory under the system's temporary directory.
fn tempfile_dir(prefix: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-{prefix}-{}-{}",
        std::process::id(),
        crate::uuid()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("can't create {}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_with_text_has_ink_and_a_blank_page_has_none() {
        let dir = tempfile_dir("ink-test").unwrap();
        let blank = dir.join("blank.html");
        std::fs::write(&blank, "<html><body style='background:#fff'></body></html>").unwrap();
        let text = dir.join("text.html");
        std::fs::write(
            &text,
            "<html><body style='background:#fff'><h1 style='font-size:64px'>Switchboard</h1>\
             <div style='width:300px;height:200px;background:#c33'></div></body></html>",
        )
        .unwrap();
        let (blank_png, text_png) = (dir.join("blank.png"), dir.join("text.png"));
        screenshot(
            &format!("file://{}", blank.display()),
            &blank_png,
            800,
            600,
            1000,
        )
        .unwrap();
        screenshot(
            &format!("file://{}", text.display()),
            &text_png,
            800,
            600,
            1000,
        )
        .unwrap();
        assert!(
            !ink(&blank_png).unwrap().is_non_blank(),
            "{:?}",
            ink(&blank_png)
        );
        assert!(
            ink(&text_png).unwrap().is_non_blank(),
            "{:?}",
            ink(&text_png)
        );
        let dom = dump_dom(
            "data:text/html,<div id=x></div><script>document.getElementById('x').textContent='ran'</script>",
            1000,
        )
        .unwrap();
        assert!(dom.contains(">ran<"), "scripts did not run: {dom}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
