//! The samplers against diffusers 0.42.1 on the fixtures of tools/make_sampler_fixtures.py:
//! sigmas and timesteps value for value, and whole sampling loops on a small latent driven by
//! stored random velocities.

mod common;

use sana::backend::{cpu::Cpu, Backend, Tensor};
use sana::engine::dit::HostTensor;
use sana::engine::sampler::{flow_dpm_schedule, flow_euler_schedule, DpmSolverPP, Sampler};
use sana::testing::{compare, tolerance};

fn load(name: &str) -> (Vec<f32>, Vec<f32>, HostTensor, HostTensor) {
    let path = common::fixtures().join("sampler").join(format!("{name}.safetensors"));
    common::check_fixture_provenance(&path);
    let files = common::open(&path);
    let get = |k: &str| HostTensor::read(&files, k).unwrap().unwrap_or_else(|| panic!("{name}: no {k}"));
    (get("sigmas").data, get("timesteps").data, get("velocities"), get("trajectory"))
}

fn check_schedule(name: &str, ours: &sana::engine::sampler::Schedule, sigmas: &[f32], timesteps: &[f32]) {
    assert_eq!(ours.sigmas.len(), sigmas.len(), "{name}: sigma count");
    for (i, (a, b)) in ours.sigmas.iter().zip(sigmas).enumerate() {
        assert!((a - b).abs() <= 1e-6, "{name}: sigma {i}: ours {a}, diffusers {b}");
    }
    assert_eq!(ours.timesteps.len(), timesteps.len());
    for (i, (a, b)) in ours.timesteps.iter().zip(timesteps).enumerate() {
        assert!((a - b).abs() <= 1e-3, "{name}: timestep {i}: ours {a}, diffusers {b}");
    }
}

/// Every intermediate latent of the loop, against diffusers'.
fn check_trajectory(
    name: &str,
    steps: usize,
    velocities: &HostTensor,
    trajectory: &HostTensor,
    mut step: impl FnMut(usize, &mut Vec<f32>, &[f32]),
) {
    let size = velocities.data.len() / steps;
    let mut x = trajectory.data[..size].to_vec();
    for i in 0..steps {
        step(i, &mut x, &velocities.data[i * size..][..size]);
        let expected = &trajectory.data[(i + 1) * size..][..size];
        let c = compare(&x, expected);
        assert!(c.rel_l2 <= tolerance::TRANSFORMER_F32, "{name} step {i}: {c}");
    }
    eprintln!("{name}: final {}", compare(&x, &trajectory.data[steps * size..]));
}

fn dpm_case(steps: usize, shift: f64) {
    let name = format!("dpm.{steps}.{shift}");
    let (sigmas, timesteps, velocities, trajectory) = load(&name);
    let schedule = flow_dpm_schedule(steps, shift).unwrap();
    check_schedule(&name, &schedule, &sigmas, &timesteps);
    let mut solver = Sampler::DpmSolver(DpmSolverPP::new(schedule));
    check_trajectory(&name, steps, &velocities, &trajectory, |_, x, v| solver.step(&Cpu, x, &v.to_vec()).unwrap());
}

fn euler_case(steps: usize, shift: f64) {
    let name = format!("euler.{steps}.{shift}");
    let (sigmas, timesteps, velocities, trajectory) = load(&name);
    let schedule = flow_euler_schedule(steps, shift).unwrap();
    check_schedule(&name, &schedule, &sigmas, &timesteps);
    let mut solver = Sampler::euler(schedule);
    check_trajectory(&name, steps, &velocities, &trajectory, |_, x, v| solver.step(&Cpu, x, &v.to_vec()).unwrap());
}

#[test]
fn dpm_solver_50_steps_shift_8() {
    dpm_case(50, 8.0);
}

#[test]
fn dpm_solver_10_steps_shift_7() {
    dpm_case(10, 7.0);
}

#[test]
fn dpm_solver_20_steps_no_shift() {
    dpm_case(20, 1.0);
}

#[test]
fn flow_euler_50_steps_shift_8() {
    euler_case(50, 8.0);
}

#[test]
fn flow_euler_6_steps_shift_3() {
    euler_case(6, 3.0);
}

#[test]
fn classifier_free_guidance_blends() {
    // [u; c] = [1, -2; 2, 0] at scale 6: u + 6·(c − u)
    let model_out = Tensor::from_host(&Cpu, &[2, 2], &[1.0, -2.0, 2.0, 0.0]).unwrap();
    let mut out = Cpu.alloc_table(2).unwrap();
    sana::backend::guided_velocity(&Cpu, &mut out, &model_out, 6.0).unwrap();
    assert_eq!(out, [7.0, 10.0]);
    // one copy: no guidance, the output itself
    let single = Tensor::from_host(&Cpu, &[1, 2], &[1.0, -2.0]).unwrap();
    sana::backend::guided_velocity(&Cpu, &mut out, &single, 6.0).unwrap();
    assert_eq!(out, [1.0, -2.0]);
    // three copies is no guidance batch
    let triple = Tensor::from_host(&Cpu, &[3, 2], &[0.0; 6]).unwrap();
    assert!(sana::backend::guided_velocity(&Cpu, &mut out, &triple, 6.0).is_err());
}
