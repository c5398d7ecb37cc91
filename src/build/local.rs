//! The local backend: the host's cargo builds for the target triple.

use crate::build::{Built, run_cargo};
use crate::error::Result;
use crate::plan::BuildPlan;
use crate::report::Reporter;
use crate::signal::Interrupt;

pub fn build(plan: &BuildPlan, reporter: &Reporter, interrupt: &Interrupt) -> Result<Built> {
    run_cargo(
        &plan.cargo,
        &plan.project.manifest_path,
        &plan.project.bin,
        reporter,
        interrupt,
    )
}
