"""The ``export`` and ``bundle`` sub-commands of ``detak`` (issue 5).

``detak export onnx|tflite`` needs the host install (torch; litert-torch for TFLite);
``detak bundle verify|install|list`` run on the kiosk (cryptography, no torch).

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
>>> add_export_commands(sub)
>>> a = p.parse_args(["export", "onnx", "--model", "edge"])
>>> a.kind, a.model, a.calibration_size
('onnx', 'edge', 300)
>>> p.parse_args(["bundle", "install", "b.tar.gz", "--public-key", "k.pub"]).bundle_command
'install'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_export_commands"]


def add_export_commands(sub: Any) -> None:
    """Add ``export`` and ``bundle`` to argparse sub-parsers."""
    p = sub.add_parser(
        "export", help="export a trained CNN to ONNX or TFLite, fp32 and int8 (host)",
        description="Export MODEL (a trained model NAME or --source DIR) as fp32 and int8 "
        "files with the fused Grad-CAM outputs where the head allows: onnx → NAME.fp32.onnx, "
        "NAME.int8.onnx (static QDQ, per-channel; MinMax, Entropy and Percentile calibration "
        "compared, the best fold-9 macro AUC kept); tflite → NAME.fp32.tflite, "
        "NAME.int8.tflite (litert-torch PT2E). The calibration set is a stratified, seeded "
        "sample of training-fold records. Writes export.json (sizes, fold-9 AUCs, parity with "
        "torch, Grad-CAM agreement) beside them.")
    p.add_argument("kind", choices=["onnx", "tflite"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="NAME", help="a trained or shipped model name")
    src.add_argument("--source", metavar="DIR", help="the folder of a trained model")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: the model's folder); card.json and "
                   "standardizer.json are copied there")
    p.add_argument("--calibration-size", type=int, default=300,
                   help="calibration records from folds 1-8 (default 300)")
    p.add_argument("--seed", type=int, default=0, help="calibration sample seed")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--eval-records", type=int, default=None,
                   help="score only the first N labelled fold-9 records (smoke runs)")
    p.add_argument("--activations", choices=["uint8", "int8"], default="uint8",
                   help="ONNX activation type (uint8: fastest on x86 VNNI; int8: ARM)")
    p.add_argument("--no-cam", action="store_true", help="export without the Grad-CAM outputs")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "bundle", help="signed model bundles: keygen, create, verify, install, list",
        description="A bundle carries a model's exported files, cards, preprocessing "
        "statistics, label names and the rule-set versions, with a SHA-256 manifest signed "
        "with Ed25519. Kiosks install only bundles that verify against their public key "
        "(--public-key or $DETAK_BUNDLE_PUBLIC_KEY); the previous bundle stays active if "
        "anything fails.")
    bsub = p.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    q = bsub.add_parser("keygen", help="make an Ed25519 key pair (PEM files)")
    q.add_argument("--private", required=True, metavar="FILE", help="private key (mode 0600)")
    q.add_argument("--public", required=True, metavar="FILE", help="public key for kiosks")
    q.set_defaults(func=_cmd_bundle_keygen)
    q = bsub.add_parser("create", help="bundle and sign a model folder")
    q.add_argument("model", metavar="NAME|DIR")
    q.add_argument("--key", required=True, metavar="PRIVATE.pem")
    q.add_argument("--out", required=True, metavar="FILE.tar.gz")
    q.add_argument("--name", default=None, help="bundle name (default: the model's name)")
    q.add_argument("--version", default=None, help="bundle version (default: UTC timestamp)")
    q.add_argument("--include-torch", action="store_true", help="also bundle NAME.pt")
    q.set_defaults(func=_cmd_bundle_create)
    for action, helptext in (("verify", "check a bundle's signature and files"),
                             ("install", "verify and activate a bundle (atomic switch)")):
        q = bsub.add_parser(action, help=helptext)
        q.add_argument("bundle", metavar="FILE")
        q.add_argument("--public-key", default=None, metavar="PUBLIC.pem",
                       help="trusted key (default: $DETAK_BUNDLE_PUBLIC_KEY)")
        if action == "install":
            q.add_argument("--root", default=None, metavar="DIR",
                           help="bundle root (default: $DETAK_BUNDLES or cache_dir()/bundles)")
        q.set_defaults(func=_cmd_bundle_verify if action == "verify" else _cmd_bundle_install)
    q = bsub.add_parser("list", help="list the active bundles")
    q.add_argument("--root", default=None, metavar="DIR")
    q.set_defaults(func=_cmd_bundle_list)


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def _cmd_export(args: argparse.Namespace) -> int:
    from detak.export.pipeline import export_model
    from detak.export.predict import ModelNotFoundError

    try:
        card = export_model(args.model, args.kind, source=args.source, out=args.out,
                            calibration_size=args.calibration_size, seed=args.seed,
                            eval_records=args.eval_records, threads=args.threads,
                            activation_type=args.activations, cam=not args.no_cam,
                            progress=lambda m: print(f"detak export: {m}", file=sys.stderr))
    except (ModelNotFoundError, ImportError, ValueError) as err:
        from detak.errors import error_line

        print(error_line("export", err), file=sys.stderr)
        return 2
    e = card["exports"][args.kind]
    summary = {"model": card["name"], "cam": card["cam"]["kind"],
               "torch_fp32_macro_auc": e["torch_fp32"]["macro_auc"]}
    for prec in ("fp32", "int8"):
        summary[prec] = {k: e[prec].get(k) for k in (
            "file", "bytes", "macro_auc", "mi_auc", "max_abs_prob_diff_vs_torch",
            "macro_auc_change_vs_fp32", "calibration_method", "error")
            if e[prec].get(k) is not None}
        cam_key = "cam_mi_vs_torch" if prec == "fp32" else "cam_mi_vs_fp32"
        if cam_key in e[prec]:
            summary[prec][cam_key + "_mean_r"] = e[prec][cam_key].get("mean_r")
    _print_json(summary)
    return 1 if "error" in e["int8"] else 0


def _public_key(arg: str | None) -> str:
    from detak.export.bundle import PUBLIC_KEY_ENV, BundleKeyError

    key = arg or os.environ.get(PUBLIC_KEY_ENV)
    if not key:
        raise BundleKeyError(f"no public key: pass --public-key or set ${PUBLIC_KEY_ENV}")
    return key


def _bundle_error(action: str, err: Exception) -> int:
    """One line in the form every command uses (detak.errors), the error's class kept as the
    reason (tampered, truncated, wrong key ...); a bundle problem is a usage error (exit 2)."""
    from detak.errors import error_line

    print(error_line(f"bundle {action}", f"{type(err).__name__}: {err}"), file=sys.stderr)
    return 2


def _cmd_bundle_keygen(args: argparse.Namespace) -> int:
    from detak.export.bundle import BundleError, generate_keypair, key_id, load_public_key

    try:
        priv, pub = generate_keypair(args.private, args.public)
    except BundleError as err:
        return _bundle_error("keygen", err)
    _print_json({"private": str(priv), "public": str(pub),
                 "key_id": key_id(load_public_key(pub))})
    return 0


def _cmd_bundle_create(args: argparse.Namespace) -> int:
    from detak.export.bundle import BundleError, create_bundle
    from detak.export.predict import ModelNotFoundError, resolve_model_dir

    try:
        folder = resolve_model_dir(args.model)
        out = create_bundle(folder, args.out, args.key, name=args.name, version=args.version,
                            include_torch=args.include_torch)
    except (BundleError, ModelNotFoundError) as err:
        return _bundle_error("create", err)
    _print_json({"bundle": str(out), "bytes": Path(out).stat().st_size, "source": str(folder)})
    return 0


def _manifest_summary(manifest: Any) -> dict[str, Any]:
    d = manifest.data
    return {"bundle": d["bundle"], "version": d["version"], "model": d["model"],
            "key_id": d["key_id"], "rule_sets": d["rule_sets"], "labels": d["labels"],
            "files": {n: e["bytes"] for n, e in d["files"].items()},
            "manifest_sha256": manifest.digest}


def _cmd_bundle_verify(args: argparse.Namespace) -> int:
    from detak.export.bundle import BundleError, verify_bundle

    try:
        manifest = verify_bundle(args.bundle, _public_key(args.public_key))
    except BundleError as err:
        return _bundle_error("verify", err)
    _print_json({"verified": True, **_manifest_summary(manifest)})
    return 0


def _cmd_bundle_install(args: argparse.Namespace) -> int:
    from detak.export.bundle import BundleError, install_bundle, verify_bundle

    try:
        key = _public_key(args.public_key)
        folder = install_bundle(args.bundle, key, args.root)
        manifest = verify_bundle(args.bundle, key)
    except (BundleError, OSError) as err:
        return _bundle_error("install", err)
    _print_json({"installed": str(folder), **_manifest_summary(manifest)})
    return 0


def _cmd_bundle_list(args: argparse.Namespace) -> int:
    from detak.export.bundle import bundles_root

    active = Path(args.root or bundles_root()) / "active"
    rows = []
    if active.is_dir():
        for link in sorted(active.iterdir()):
            if link.name.startswith("."):
                continue
            target = link.resolve()
            manifest = target / "manifest.json"
            data = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
            rows.append({"bundle": link.name, "folder": str(target),
                         "version": data.get("version"), "key_id": data.get("key_id")})
    _print_json(rows)
    return 0
