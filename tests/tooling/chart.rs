//! The Helm chart, checked with Helm's own code: `tests/chart/check_chart.py` lints, renders and
//! schema-checks it through helm-python-sdk (the Helm v4 library in a Python wheel, so no helm
//! binary is downloaded). The package is installed into a virtualenv under the target dir.

use std::path::PathBuf;
use std::process::Command;

const HELM_SDK: &str = "helm-python-sdk==0.2.2";

fn python_with_helm() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("helm-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import helm_python"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let created = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .expect("python3 is needed");
        assert!(created.success(), "python3 -m venv failed");
        let installed = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                HELM_SDK,
            ])
            .status()
            .expect("pip");
        assert!(installed.success(), "pip install {HELM_SDK} failed");
    }
    python
}

#[test]
fn the_chart_lints_renders_and_refuses_wrong_values() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chart/check_chart.py");
    let output = Command::new(python_with_helm())
        .arg(script)
        .output()
        .expect("run the chart checks");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "chart checks failed:\n{text}");
    assert!(text.contains("passed, 0 failed"), "{text}");
}
