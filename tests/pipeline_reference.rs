//! Resolution binning against diffusers 0.42.1 (tools/make_binning_fixtures.py): the bin every
//! request maps to, for both tables, and the resize-and-centre-crop back to the request.

mod common;

use sana::engine::dit::HostTensor;
use sana::engine::pipeline::binning::{binned_resolution, resize_and_center_crop};
use sana::testing::{compare, tolerance};

#[test]
fn bins_match_diffusers() {
    let text = std::fs::read_to_string(common::fixtures().join("pipeline/bins.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for (sample_size, rows) in json["bins"].as_object().unwrap() {
        for row in rows.as_array().unwrap() {
            let v: Vec<usize> = row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
            let got = binned_resolution(v[0], v[1], sample_size.parse().unwrap()).unwrap();
            assert_eq!(got, (v[2], v[3]), "sample_size {sample_size}, request {}x{}", v[0], v[1]);
            checked += 1;
        }
    }
    assert!(checked >= 20);
}

#[test]
fn resize_and_crop_matches_diffusers() {
    for i in 0..4 {
        let path = common::fixtures().join(format!("pipeline/resize.{i}.safetensors"));
        common::check_fixture_provenance(&path);
        let meta = common::metadata(&path);
        let files = common::open(&path);
        let input = HostTensor::read(&files, "input").unwrap().unwrap();
        let expected = HostTensor::read(&files, "output").unwrap().unwrap();
        let [b, c, t, h, w] = input.shape[..] else { panic!("5-D input") };
        let (nh, nw) = (meta["new_height"].parse().unwrap(), meta["new_width"].parse().unwrap());
        let out = resize_and_center_crop(&input.data, b * c * t, [h, w], nh, nw);
        let cmp = compare(&out, &expected.data);
        eprintln!("resize.{i} {:?} -> {nh}x{nw}: {cmp}", input.shape);
        assert!(cmp.rel_l2 <= tolerance::TRANSFORMER_F32, "resize.{i}: {cmp}");
    }
}
