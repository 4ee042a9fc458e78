//! A hand-written SVG of the results: round-trip latency (p50 bar, p99 and p99.9 marks,
//! log scale) for 64-byte messages per transport, and bulk GB/s by buffer size.

use super::stats::Row;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The first bytes of every plot: how `bench --plot` recognises a file it wrote before
/// (and may replace) from one it did not (which it refuses to replace).
pub const HEAD: &str = "<!-- intercore bench --plot -->\n";

/// The plot of `rows`.
pub fn svg(rows: &[Row]) -> String {
    let lat: Vec<&Row> = rows
        .iter()
        .filter(|r| r.bench == "rtt" && (r.size == 64 || r.size == 0) && r.lat.is_some())
        .collect();
    let bulk: Vec<&Row> = rows
        .iter()
        .filter(|r| r.bench == "bulk" && r.gbps.is_some())
        .collect();
    let (w, left, bar_h) = (900.0, 190.0, 22.0);
    let lat_h = 60.0 + lat.len() as f64 * (bar_h + 8.0);
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = bulk.iter().map(|r| r.size).collect();
        s.dedup();
        s
    };
    let transports = ["write-pass", "intercore-coherent", "intercore-noncoherent"];
    let bulk_h = 80.0 + sizes.len() as f64 * (transports.len() as f64 * 16.0 + 14.0);
    let h = lat_h + bulk_h + 20.0;
    let mut s = String::from(HEAD);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">Round trip, 64 B messages (floors carry no payload): p50 bar, p99 ▲, p99.9 ●, log scale</text>"#
    );
    latency_bars(&mut s, &lat, (w, left, bar_h, lat_h));
    bulk_bars(&mut s, &bulk, &sizes, &transports, (w, left, lat_h));
    s.push_str("</svg>\n");
    s
}

/// The round-trip section: one bar per transport, log scale. `geo`: width, left margin,
/// bar height, section height.
fn latency_bars(s: &mut String, lat: &[&Row], geo: (f64, f64, f64, f64)) {
    let (w, left, bar_h, lat_h) = geo;
    // Log scale from 50 ns to 1 ms.
    let (lo, hi) = (50f64.ln(), 1e6f64.ln());
    let x = |ns: f64| left + (ns.max(50.0).ln() - lo) / (hi - lo) * (w - left - 30.0);
    for (i, tick) in [100.0, 1e3, 1e4, 1e5, 1e6].iter().enumerate() {
        let tx = x(*tick);
        let label = ["100 ns", "1 µs", "10 µs", "100 µs", "1 ms"][i];
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="34" x2="{tx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{label}</text>"##,
            lat_h - 14.0,
            lat_h - 2.0
        );
    }
    for (i, r) in lat.iter().enumerate() {
        let l = r.lat.expect("filtered");
        let y = 40.0 + i as f64 * (bar_h + 8.0);
        let color = if r.transport.starts_with("intercore") {
            "#2b7bb9"
        } else {
            "#999"
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + 15.0,
            esc(&r.transport)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{y:.1}" width="{:.1}" height="{bar_h}" fill="{color}"/>"#,
            x(l.p50 as f64) - left
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="white" font-size="11">{:.2} µs</text>"#,
            left + 4.0,
            y + 15.0,
            l.p50 as f64 / 1e3
        );
        let _ = writeln!(
            s,
            r#"<path d="M{:.1},{:.1} l-5,9 h10 z" fill="black"/>"#,
            x(l.p99 as f64),
            y + 6.0
        );
        let _ = writeln!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="none" stroke="black"/>"#,
            x(l.p999 as f64),
            y + 11.0
        );
    }
}

/// The bulk section: GB/s bars per buffer size and transport. `geo`: width, left margin,
/// height of the section above.
fn bulk_bars(
    s: &mut String,
    bulk: &[&Row],
    sizes: &[usize],
    transports: &[&str],
    geo: (f64, f64, f64),
) {
    let (w, left, lat_h) = geo;
    let top = lat_h + 10.0;
    let _ = writeln!(
        s,
        r#"<text x="10" y="{:.1}" font-size="15" font-weight="bold">Bulk data plane, GB/s by buffer size (host write pass + handoff + completion)</text>"#,
        top + 12.0
    );
    let max = bulk.iter().filter_map(|r| r.gbps).fold(0.1, f64::max);
    let colors = ["#999", "#2b7bb9", "#e8833a"];
    let mut y = top + 30.0;
    for size in sizes {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="bold">{} KiB</text>"#,
            left - 8.0,
            y + 12.0,
            size >> 10
        );
        for (k, t) in transports.iter().enumerate() {
            if let Some(r) = bulk.iter().find(|r| r.size == *size && r.transport == *t) {
                let g = r.gbps.expect("filtered");
                let bw = g / max * (w - left - 120.0);
                let _ = writeln!(
                    s,
                    r#"<rect x="{left}" y="{y:.1}" width="{bw:.1}" height="14" fill="{}"/>"#,
                    colors[k]
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" font-size="11">{} {:.2}</text>"#,
                    left + bw + 6.0,
                    y + 11.0,
                    t,
                    g
                );
            }
            y += 16.0;
        }
        y += 14.0;
    }
}
