//! `bench/compare.py` still runs: its `--tiny` setting (x86_64, one pair, one sample, a
//! workspace of one function, no cold rows) against cargo-lambda, and its results are well
//! formed. Timings are not checked here: they are not tests on a shared machine.

use std::path::Path;
use std::process::Command;

use crate::support;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_benchmark_script_runs_on_a_tiny_setting_and_renders_its_tables() {
    if !support::require_tools(&["python3", "cargo-lambda"]) {
        return;
    }
    // cargo-lambda links x86_64 with zig too.
    if !support::zig_installed() {
        support::skip_or_fail("zig is not installed (`python3 -m pip install ziglang`)");
        return;
    }
    let plot_wanted = Command::new("python3")
        .args(["-c", "import matplotlib"])
        .status()
        .is_ok_and(|s| s.success());
    if !plot_wanted {
        support::skip_or_fail("matplotlib is not installed (`python3 -m pip install matplotlib`)");
    }
    let out = tempfile::tempdir().unwrap();
    let markdown = out.path().join("BENCHMARKS.md");
    std::fs::copy(Path::new(REPO).join("BENCHMARKS.md"), &markdown).unwrap();
    let json = out.path().join("results.json");
    let svg = out.path().join("scale.svg");
    // Kept between runs (cargo-lambda's dependencies compile once); ours shares the fixtures'
    // target dir, where the echo fixture's dependencies are already built.
    let work = concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-tiny");
    let output = Command::new("python3")
        .arg(Path::new(REPO).join("bench/compare.py"))
        .args(["--tiny", "--exe", env!("CARGO_BIN_EXE_cargo-lambda-build")])
        .args(["--work", work, "--ours-target-dir"])
        .arg(support::fixture_target_dir())
        .arg("--json")
        .arg(&json)
        .arg("--markdown")
        .arg(&markdown)
        .arg("--plot")
        .arg(&svg)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let stderr = support::stderr(&output);
    assert!(
        output.status.success(),
        "compare.py --tiny failed:\n{stderr}"
    );
    assert!(stderr.contains("load average before"), "{stderr}");
    assert!(stderr.contains("load average after"), "{stderr}");

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(results["settings"]["tiny"], true);
    let rows = results["rows"].as_array().unwrap();
    let row = |metric: &str| {
        rows.iter()
            .find(|r| r["metric"] == metric)
            .unwrap_or_else(|| panic!("no row `{metric}` in {results:#}"))
    };
    // Both tools timed, each with median, spread and sample count, and a ratio.
    for metric in ["no-op build, x86_64", "edit-rebuild-zip, x86_64"] {
        let r = row(metric);
        for tool in ["ours", "theirs"] {
            let s = &r[tool];
            let median = s["median"].as_f64().unwrap();
            assert!(median > 0.0, "{metric}: {tool}: {s}");
            assert!(s["min"].as_f64().unwrap() <= median && median <= s["max"].as_f64().unwrap());
            assert_eq!(s["n"], 1, "{metric}: {tool}: one pair, one sample");
        }
        assert!(r["ratio"].as_f64().unwrap() > 0.0, "{metric}: {r}");
        assert!(r["met"].is_boolean(), "{metric}: a goal verdict: {r}");
    }
    let zip = row("zip, default, x86_64");
    assert!(zip["ours"]["median"].as_f64().unwrap() > 100_000.0, "{zip}");
    assert!(
        zip["theirs"]["median"].as_f64().unwrap() > 100_000.0,
        "{zip}"
    );
    // What --tiny does not measure says so.
    let cold = row("cold build, x86_64");
    assert!(cold["ours"].is_null(), "{cold}");
    assert!(
        cold["note"].as_str().unwrap().contains("not measured"),
        "{cold}"
    );
    let load = &results["load_average"];
    assert!(load["before"]["1m"].is_number() && load["after"]["1m"].is_number());

    let scale = results["scale"].as_array().unwrap();
    assert_eq!(scale.len(), 1, "{scale:?}");
    assert_eq!(scale[0]["n"], 1);
    for tool in ["ours", "theirs"] {
        let t = &scale[0][tool];
        assert!(t["noop"]["median"].as_f64().unwrap() > 0.0, "{t}");
        assert!(t["edit"]["median"].as_f64().unwrap() > 0.0, "{t}");
        assert!(t["peak_tree_bytes"].as_u64().unwrap() > 1 << 20, "{t}");
    }

    // The tables went between the markers of the copy, and nowhere else.
    let rendered = std::fs::read_to_string(&markdown).unwrap();
    let between = |name: &str| {
        let start = rendered.find(&format!("<!-- bench:{name} -->")).unwrap();
        let end = rendered.find(&format!("<!-- /bench:{name} -->")).unwrap();
        rendered[start..end].to_string()
    };
    let table = between("results");
    assert!(table.contains("| no-op build, x86_64 |"), "{table}");
    assert!(table.contains("A --tiny run"), "{table}");
    assert!(table.contains("Load average"), "{table}");
    let scale_table = between("scale");
    assert!(
        scale_table.contains("| 1 | cargo-lambda-build |"),
        "{scale_table}"
    );
    assert!(
        scale_table.contains("| 1 | cargo-lambda |"),
        "{scale_table}"
    );
    if plot_wanted {
        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert!(svg_text.contains("<svg"), "not an SVG: {}", svg.display());
        assert!(scale_table.contains("scale.svg"), "{scale_table}");
    }
    let original = std::fs::read_to_string(Path::new(REPO).join("BENCHMARKS.md")).unwrap();
    let outside = |text: &str| text[..text.find("<!-- bench:results -->").unwrap()].to_string();
    assert_eq!(outside(&rendered), outside(&original));
}
