#!/usr/bin/env python3
"""Quantize a catalog model to int8, prove its accuracy against the f32 model, and add it.

    quantize.py NAME [--name NEW] [--models-dir Models] [--photos Models/photos]
                [--calibration DIR] [--calibration-size 300] [--validation-size 500]
                [--min-agreement 0.97] [--recipes default,keep-ends,keep-depthwise]

What it does:
 1. Builds a calibration set and a disjoint validation set of tensors from real photos
    (tools/models/photo_sets.py: no photo feeds both; `--calibration DIR` calibrates on your
    own images instead), preprocessed exactly as the manifest says.
 2. Quantizes the ONNX model with NNCF's post-training quantization (ONNX backend: min-max
    ranges over the calibration set, fast bias correction), giving a QDQ ONNX model
    (QuantizeLinear/DequantizeLinear pairs, opset 13) that OpenVINO and ONNX Runtime both run
    with int8 kernels.
 3. Runs both models in OpenVINO on the validation set: the f32 model at f32 precision, the
    int8 model as visionpool serves it. Top-1 agreement, mean top-5 overlap, and the top class
    of each sample photo (Models/samples) are measured, and OpenVINO's profiling says which
    kernels the int8 model's convolutions and fully connected layers ran.
 4. If top-1 agreement is below --min-agreement, tries the next recipe; when none reaches it,
    nothing is written and the exit status is 2, with every attempt's figures. Otherwise writes
    Models/NEW.onnx (default NEW: NAME-int8) and its manifest with the figures recorded.

Recipes, tried in the order given:
  default         NNCF's defaults: every convolution and matrix product int8, symmetric ranges,
                  fast bias correction.
  keep-ends       the first convolution and the classifier stay in the engine's float precision
                  (an ignored scope).
  keep-depthwise  that, and every depthwise convolution (group > 1) kept too, asymmetric
                  activation ranges (preset mixed) and full bias correction: for MobileNet- and
                  EfficientNet-style networks, whose depthwise layers lose most under int8.
A recipe that fails inside NNCF is recorded as failed and the next one is tried.

For context the manifest also records how well the f32 model itself agrees with f32 when
OpenVINO runs it at its default precision (bf16 on CPUs with avx512_bf16 or AMX), and the
int8 model's agreement on the validation inputs the f32 model is confident about (top
probability > 0.5): disagreements on uncertain inputs are often ties between near classes.
"""

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter

import onnx_graph
import photo_sets

# QuantizeLinear with per-channel scales needs opset 13.
QDQ_OPSET = 13
RECIPES = ("default", "keep-ends", "keep-depthwise")
CONFIDENT = 0.5
BATCH = 25


class Refused(Exception):
    """The quantization did not reach the agreement asked for."""


def read_manifest(models_dir: Path, name: str) -> dict:
    path = models_dir / f"{name}.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        available = sorted(p.stem for p in models_dir.glob("*.json"))
        raise SystemExit(f"no model {name} in {models_dir} (have: {', '.join(available)})")
    if manifest.get("precision") == "int8":
        raise SystemExit(f"{name} is already an int8 model; quantize its f32 source {manifest['quantization']['source_model']}")
    model = models_dir / manifest["file"]
    if not model.is_file():
        raise SystemExit(f"{name}'s model file {model} is missing: run tools/setup.sh")
    return manifest


def cpu_flags() -> str:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(flag for flag in wanted if flag in flags)


class OpenVINORunner:
    """Runs ONNX files on OpenVINO's CPU plugin in batches, as visionpool's engine does.

    At OpenVINO's default precision (precision None) it falls back as visionpool does: when the
    precision OpenVINO picks on this CPU (bf16 with AVX512_BF16 or AMX) cannot compile or run a
    model, the model runs at f32, and `fallbacks` records why. OpenVINO 2026.4 cannot compile the
    keep-depthwise int8 EfficientNet at bf16 on AMX, nor anything at bf16 under an AVX2
    ONEDNN_MAX_CPU_ISA cap; set-up must not fail there."""

    def __init__(self):
        import openvino

        self.core = openvino.Core()
        self.version = openvino.get_version()
        self.default_precision = self.core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
        self.fallbacks = {}

    def _compiled(self, model_path: Path, precision: str | None, extra: dict, sample: np.ndarray):
        """The model compiled at `precision` and proven on `sample`, falling back to f32 from the default."""
        config = dict(extra, **({"INFERENCE_PRECISION_HINT": precision} if precision else {}))
        try:
            compiled = self.core.compile_model(str(model_path), "CPU", config)
            produced = compiled.create_infer_request().infer({0: sample})[0]
            if produced.shape[0] != sample.shape[0]:  # seen under an AVX2 cap: every layer left unrun
                raise RuntimeError(f"a batch of {sample.shape[0]} gave {produced.shape[0]} rows of scores")
            return compiled
        except RuntimeError as error:
            if precision is not None:
                raise
            reason = " ".join(line for line in str(error).splitlines() if line.strip() and not line.startswith("Exception from "))
            self.fallbacks[Path(model_path).name] = f"{self.default_precision} could not run it ({reason}); ran f32"
            return self._compiled(model_path, "f32", extra, sample)

    def precision(self, model_path: Path) -> str:
        """The precision the default runs `model_path` at: OpenVINO's choice, or f32 after a fallback."""
        return "f32" if Path(model_path).name in self.fallbacks else self.default_precision

    def scores(self, model_path: Path, tensors: np.ndarray, precision: str | None) -> np.ndarray:
        compiled = self._compiled(model_path, precision, {}, tensors[:1])
        request = compiled.create_infer_request()
        out = [request.infer({0: tensors[i : i + BATCH]})[0].copy() for i in range(0, len(tensors), BATCH)]
        return np.concatenate(out)

    def kernels(self, model_path: Path, sample: np.ndarray) -> dict:
        """Which precision each executed convolution and fully connected layer ran at."""
        request = self._compiled(model_path, None, {"PERF_COUNT": "YES"}, sample).create_infer_request()
        request.infer({0: sample})
        counts = {}
        for layer in request.profiling_info:
            if layer.status != layer.Status.EXECUTED or not any(k in layer.node_type for k in ("Convolution", "FullyConnected", "MatMul")):
                continue
            suffix = layer.exec_type.rsplit("_", 1)[-1].lower()
            precision = "int8" if suffix in ("i8", "u8") else suffix
            counts[precision] = counts.get(precision, 0) + 1
        return counts


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def agreement(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """Top-1 agreement and mean top-5 overlap of two score arrays."""
    top1 = float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))
    five_ref, five_cand = top_k(reference, 5), top_k(candidate, 5)
    overlap = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(five_ref, five_cand)]))
    return top1, overlap


def ends(model: onnx.ModelProto) -> list[str]:
    """The first convolution and the last Gemm/MatMul/Conv, the layers most hurt by int8; none
    for a model of fewer than three such layers, where keeping them would leave nothing int8."""
    compute = [node for node in model.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")]
    return [compute[0].name, compute[-1].name] if len(compute) >= 3 else []


def depthwise(model: onnx.ModelProto) -> list[str]:
    """Convolutions with more than one group: the depthwise layers of MobileNet-style networks."""
    def groups(node):
        return next((attribute.i for attribute in node.attribute if attribute.name == "group"), 1)
    return [node.name for node in model.graph.node if node.op_type == "Conv" and groups(node) > 1]


def kept_layers(model: onnx.ModelProto, recipe: str) -> list[str]:
    """The layers a recipe keeps out of int8; empty when the recipe does not apply to the model."""
    if recipe == "keep-ends":
        return ends(model)
    if recipe == "keep-depthwise":
        kept = depthwise(model)
        return ends(model) + kept if kept else []
    return []


def quantize(model: onnx.ModelProto, calibration: np.ndarray, recipe: str) -> onnx.ModelProto:
    import nncf

    input_name = model.graph.input[0].name
    dataset = nncf.Dataset(list(calibration[:, None]), lambda sample: {input_name: sample})
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    # 7-bit weights in every layer (NNCF's overflow fix), whatever CPU quantizes: without VNNI
    # (AVX2, AVX-512 before VNNI) the int8 kernels add pairs of u8×s8 products in 16 bits, which
    # saturate with 8-bit weights. A file quantized on a VNNI CPU without the fix lost 10 points
    # of top-1 agreement (EfficientNet-Lite0: 94.4 % → 84.4 %) when served on AVX2 kernels; with
    # it the scores are the same on every x86 CPU, for 2.6 points on VNNI (docs/quantization.md).
    options = {"fast_bias_correction": True,
               "advanced_parameters": AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE)}
    if recipe != "default":
        options["ignored_scope"] = nncf.IgnoredScope(names=kept_layers(model, recipe), validate=False)
    if recipe == "keep-depthwise":
        options.update(preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=False)
    return nncf.quantize(model, dataset, subset_size=len(calibration), **options)


def probabilities(scores: np.ndarray, kind: str) -> np.ndarray:
    """The model's scores as probabilities: softmax of logits (the manifest's output kind)."""
    if kind == "probabilities":
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def labelled(index: int, labels: list[str]) -> str:
    return f"{index} {labels[index]}" if index < len(labels) else str(index)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("model", help="catalog name of the f32 model")
    parser.add_argument("--name", help="catalog name of the int8 model (default: MODEL-int8)")
    parser.add_argument("--models-dir", type=Path, default=Path(os.environ.get("VISIONPOOL_MODELS") or onnx_graph.MODELS_DIR))
    parser.add_argument("--photos", type=Path, default=onnx_graph.MODELS_DIR / "photos", help="the bundled photos (tools/setup.sh)")
    parser.add_argument("--samples", type=Path, default=onnx_graph.MODELS_DIR / "samples", help="photos whose top class is reported")
    parser.add_argument("--calibration", type=Path, help="calibrate on the images in this folder instead of the bundled photos")
    parser.add_argument("--calibration-size", type=int, default=300)
    parser.add_argument("--validation-size", type=int, default=500)
    parser.add_argument("--min-agreement", type=float, default=0.97, help="least top-1 agreement with the f32 model (0–1)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="recipes to try in order until one agrees enough")
    args = parser.parse_args()

    name = args.name or f"{args.model}-int8"
    recipes = [r for r in args.recipes.split(",") if r]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown or not recipes:
        raise SystemExit(f"unknown recipe {', '.join(unknown) or '(none)'}; choose from {', '.join(RECIPES)}")
    if not 0 < args.min_agreement <= 1:
        raise SystemExit("--min-agreement is a fraction between 0 and 1, e.g. 0.97")
    if args.calibration_size < 1 or args.validation_size < 1:
        raise SystemExit("--calibration-size and --validation-size must be at least 1")
    manifest = read_manifest(args.models_dir, args.model)
    preprocessing = manifest["preprocessing"]
    labels_file = args.models_dir / manifest["labels"] if manifest.get("labels") else None
    labels = labels_file.read_text().splitlines() if labels_file else []

    start = time.monotonic()
    bundled = photo_sets.photos_in(args.photos)
    if not bundled:
        raise SystemExit(f"no photos in {args.photos}: tools/setup.sh extracts them")
    calibration_photos, validation_photos = photo_sets.split(bundled)
    if args.calibration:
        calibration_photos = photo_sets.photos_in(args.calibration)
        if not calibration_photos:
            raise SystemExit(f"no images in {args.calibration}")
    try:
        calibration = photo_sets.views(calibration_photos, args.calibration_size, preprocessing)
        validation = photo_sets.views(validation_photos, args.validation_size, preprocessing)
        samples = photo_sets.photos_in(args.samples)
        sample_tensors = np.concatenate([photo_sets.tensor(photo_sets.load_rgb(p), preprocessing) for p in samples]) if samples else None
    except photo_sets.UnreadablePhoto as error:
        raise SystemExit(f"{error}; nothing written")
    print(f"{args.model}: {len(calibration)} calibration inputs from {len(calibration_photos)} photos, "
          f"{len(validation)} validation inputs from {len(validation_photos)} other photos ({time.monotonic() - start:.1f} s)", flush=True)

    import nncf

    nncf.set_log_level(logging.ERROR)
    source_path = args.models_dir / manifest["file"]
    source = onnx.load(str(source_path))
    if source.opset_import[0].version < QDQ_OPSET:
        source = version_converter.convert_version(source, QDQ_OPSET)
    runner = OpenVINORunner()
    reference = runner.scores(source_path, validation, "f32")
    # Where OpenVINO's default is f32 already (CPUs without bf16), the default's scores are these.
    default_top1 = 1.0 if runner.default_precision == "f32" else agreement(reference, runner.scores(source_path, validation, None))[0]
    confident = probabilities(reference, manifest["output"].get("kind", "logits")).max(axis=1) > CONFIDENT
    print(f"  f32 model at OpenVINO's default precision: top-1 agreement {default_top1:6.1%} with f32; "
          f"{int(confident.sum())} of {len(validation)} validation inputs have f32 top probability > {CONFIDENT}", flush=True)
    reference_samples = runner.scores(source_path, sample_tensors, "f32") if sample_tensors is not None else None

    target = args.models_dir / f"{name}.onnx"
    partial = target.with_name(f".{target.name}.partial")
    attempts = []
    try:
        for recipe in recipes:
            if recipe != "default" and not kept_layers(source, recipe):
                print(f"  {recipe:16} not tried: it keeps nothing more than default in {args.model}")
                continue
            began = time.monotonic()
            runner.fallbacks.pop(partial.name, None)
            try:
                onnx.save(quantize(source, calibration, recipe), str(partial))
            except Exception as error:  # NNCF's failures have no common type; the next recipe may work.
                attempts.append({"recipe": recipe, "failed": f"{type(error).__name__}: {error}"})
                print(f"  {recipe:16} failed in NNCF: {type(error).__name__}: {error}", flush=True)
                continue
            scores = runner.scores(partial, validation, None)
            top1, overlap = agreement(reference, scores)
            confident_top1 = agreement(reference[confident], scores[confident])[0] if confident.any() else None
            kernels = runner.kernels(partial, validation[:1])
            attempts.append({"recipe": recipe, "top1_agreement": round(top1, 4), "top5_overlap": round(overlap, 4),
                             "confident_top1_agreement": None if confident_top1 is None else round(confident_top1, 4),
                             "kernels": kernels})
            on_confident = "no confident inputs" if confident_top1 is None else f"{confident_top1:.1%} on confident inputs"
            fallback = f"; {runner.fallbacks[partial.name]}" if partial.name in runner.fallbacks else ""
            print(f"  {recipe:16} top-1 agreement {top1:6.1%} ({on_confident}), "
                  f"top-5 overlap {overlap:6.1%}, OpenVINO kernels {kernels}{fallback} ({time.monotonic() - began:.1f} s)", flush=True)
            if top1 >= args.min_agreement and kernels.get("int8"):
                break
        else:
            best = max((a.get("top1_agreement", 0) for a in attempts), default=0)
            raise Refused(f"{args.model}: no recipe ran int8 kernels at {args.min_agreement:.1%} top-1 agreement or more with the "
                          f"f32 model (best {best:.1%}); nothing written. Try more calibration data (--calibration-size), "
                          f"other images (--calibration), or accept less (--min-agreement).")
        photos = []
        if reference_samples is not None:
            int8_samples = runner.scores(partial, sample_tensors, None)
            for path, f32, int8 in zip(samples, reference_samples.argmax(axis=1), int8_samples.argmax(axis=1)):
                photos.append({"photo": path.name, "f32": labelled(int(f32), labels), "int8": labelled(int(int8), labels)})
        record = dict(manifest)
        record.update(
            name=name,
            description=f"{manifest['description']}; int8 (NNCF post-training quantization of {args.model})",
            file=target.name,
            provenance=f"{manifest['provenance']}; quantized to int8 by tools/models/quantize.py (NNCF {nncf.__version__}, recipe {recipe})",
            precision="int8",
            quantization={
                "source_model": args.model,
                "tool": f"NNCF {nncf.__version__}",
                "method": "post-training min-max quantization with bias correction, QDQ ONNX (opset 13)",
                "recipe": recipe,
                "overflow_fix": "all layers (7-bit weights: the same scores on the int8 kernels of every x86 CPU)",
                "calibration": {"inputs": len(calibration), "photos": len(calibration_photos),
                                "source": str(args.calibration) if args.calibration else "bundled photos"},
                "validation": {"inputs": len(validation), "photos": len(validation_photos),
                               "confident_inputs": int(confident.sum())},
                "f32_at_default_precision_top1_agreement": round(default_top1, 4),
                "top1_agreement": attempts[-1]["top1_agreement"],
                "top5_overlap": attempts[-1]["top5_overlap"],
                "min_agreement": args.min_agreement,
                "attempts": attempts,
                "sample_photos": photos,
                "openvino": {"version": runner.version, "cpu_flags": cpu_flags(), "kernels": kernels,
                             "precision": runner.precision(partial),
                             **({"precision_fallback": runner.fallbacks[partial.name]} if partial.name in runner.fallbacks else {})},
            },
        )
        record["labels"] = manifest.get("labels")
        os.replace(partial, target)
        onnx_graph.write_atomic(args.models_dir / f"{name}.json", (json.dumps(record, indent=2) + "\n").encode())
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return 2
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {target} and {name}.json: top-1 agreement {attempts[-1]['top1_agreement']:.1%}, "
          f"top-5 overlap {attempts[-1]['top5_overlap']:.1%}, OpenVINO kernels {kernels} ({time.monotonic() - start:.0f} s)")
    for photo in photos:
        print(f"  {photo['photo']:22} f32 {photo['f32']:28} int8 {photo['int8']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
