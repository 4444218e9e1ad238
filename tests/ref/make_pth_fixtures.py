"""make_pth_fixtures: PyTorch checkpoints for tests/test_pth.c and tests/test_ckpt_map.c, written by the real
torch.save in both of its formats, hostile checkpoints built by hand, key lists of real models for the key
mapping, and (run by hand, not in CI) the full-size parity and timing files.

Install (a venv that still sees Debian's python3-torch, python3-torchvision and python3-numpy; $VENV is any
scratch directory outside the repository):

    /usr/bin/python3 -m venv --system-site-packages "$VENV"
    "$VENV"/bin/pip install --no-deps segmentation-models-pytorch==0.4.0 timm==1.0.9 huggingface_hub==0.25.2 \
        safetensors==0.4.5 pretrainedmodels==0.7.4 efficientnet-pytorch==0.7.1 munch filelock tqdm pyyaml
    "$VENV"/bin/python tests/ref/make_pth_fixtures.py            # the committed fixtures (tests/ref/pth)

(checked with Debian's torch 1.13.1, numpy 1.24, smp 0.4.0, timm 1.0.9, pretrainedmodels 0.7.4). Run from the
repository root. By hand:

    "$VENV"/bin/python tests/ref/make_pth_fixtures.py --parity build/tools/pneumoseg --work /tmp/pth_parity
        random ImageNet-shaped encoders saved as checkpoints people have (a torchvision resnet34 and an smp
        se_resnext50_32x4d encoder state in the legacy format, a timm resnet50 as safetensors); for each,
        `pneumoseg init --encoder-weights` + `pneumoseg infer` at 64x64 against smp's Unet with the same
        encoder weights (loaded by PyTorch from the original file) and the same decoder (from pneumoseg's file).
    "$VENV"/bin/python tests/ref/make_pth_fixtures.py --bench-files /tmp/pth_bench
        a full-size torchvision resnet34 state dict in both formats (87 MB each) for bench/bench_pth.

Committed outputs, tests/ref/pth/ (under 1 MB in all):

  dtypes.zip.pth, dtypes.legacy.pth: torch.save of one OrderedDict (with the _metadata attribute a state_dict
      carries) in the zip format and with _use_new_zipfile_serialization=False: one tensor per storage type
      (f32 f64 f16 bf16 i64 i32 i16 i8 u8 bool) with special values (signed zeros, subnormals, inf, nan,
      extremes), "view" (rows 1..4, every third column from 2 of a 6x10 tensor: storage offset 12, strides
      (10, 3)), "transposed" (strides (1, 3)), "shared_a"/"shared_b" (one storage: the whole and a view from
      element 5), "scalar" (0-d int64, like num_batches_tracked), "empty" (shape (0, 3)).
  dtypes.p4.pth: the same with pickle_protocol=4 (the opcodes of protocol 4: FRAME, MEMOIZE, STACK_GLOBAL...).
  dtypes.be.pth: dtypes.zip.pth rebuilt by this script with a 'byteorder' record "big" and every storage
      byte-swapped (torch.save writes the machine's order; no big-endian machine is at hand, so it is made
      by hand, record by record, from the little-endian file).
  wrapped.zip.pth, wrapped.legacy.pth: torch.save({'state_dict': <DataParallel(conv + bn).state_dict(),
      keys 'module.'>, 'epoch': 7, 'best_score': numpy.float64(0.8125), 'optimizer': Adam.state_dict()}).
  py2_style.legacy.pth: {'a': arange(6) * 0.5 as (2, 3) float32, 'b': int64 [7, -1]} the way Python 2 and
      PyTorch 0.3 pickled it (byte-string keys, OrderedDict pairs as lists, _rebuild_tensor), built by hand.
  <name>.expect.safetensors: every tensor of <name> made contiguous, keyed "<path>/<name>" as the C reader
      names them (dict keys joined by '/'), written by the safetensors package: the C test compares every
      element bit for bit.
  hostile/*.pth: pickles calling os.system, builtins.eval and subprocess.Popen (each would create a file
      pn_pwned_* in the working folder: this script checks that plain pickle.loads does), a whole pickled
      module, an unknown opcode, a truncated pickle, a tensor longer than its storage, a record shorter than
      its storage, an offset past the storage, a negative and an absurd shape, a missing record, zip sizes
      that lie (stored and deflated), containers nested 100 deep. hostile/README lists them.
  keymaps.txt: for real models (torchvision, timm, Cadene's pretrainedmodels, smp, an AlbuNet built as the
      winner's ternausnets module), every state_dict key with its shape and the smp name it must map to
      ("-" = dropped), the expected names taken from smp's own state_dict (checked here for the set, and
      for timm's SE names paired in module order with equal shapes).
"""
import argparse
import collections
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "pth")
HOSTILE = os.path.join(OUT, "hostile")

# ------------------------------------------------------------------ the regular fixtures


def dtype_tensors():
    g = torch.Generator().manual_seed(11)
    special = [0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan")]
    t = collections.OrderedDict()
    t["f32"] = torch.tensor(special + [1e-45, -3.4028235e38, 1.17549435e-38], dtype=torch.float32)
    t["f32_rand"] = torch.randn(3, 4, 5, generator=g)
    t["f64"] = torch.tensor(special + [5e-324, 1.0 / 3.0, -1.7976931348623157e308], dtype=torch.float64)
    t["f16"] = torch.tensor(special + [65504.0, 2.0**-14, 2.0**-24, 1023 * 2.0**-24], dtype=torch.float16)
    t["bf16"] = torch.tensor(special + [2.0**-126, 2.0**-133, 3.3895314e38], dtype=torch.bfloat16)
    t["i64"] = torch.tensor([0, -1, 2**62, -(2**63), 2**63 - 1, 12345678901], dtype=torch.int64)
    t["i32"] = torch.tensor([0, -1, -(2**31), 2**31 - 1], dtype=torch.int32)
    t["i16"] = torch.tensor([0, -1, -(2**15), 2**15 - 1], dtype=torch.int16)
    t["i8"] = torch.tensor([0, -1, -128, 127], dtype=torch.int8)
    t["u8"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    t["bool"] = torch.tensor([True, False, True, True], dtype=torch.bool)
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10) * 0.5 - 7
    t["view"] = base[1:5, 2:9:3]  # storage offset 12, strides (10, 3)
    t["transposed"] = torch.randn(4, 3, generator=g).t()  # strides (1, 3)
    shared = torch.randn(12, generator=g)
    t["shared_a"] = shared
    t["shared_b"] = shared[5:].view(7)
    t["scalar"] = torch.tensor(2**40 + 3, dtype=torch.int64)
    t["empty"] = torch.zeros(0, 3)
    assert t["view"].storage_offset() == 12 and t["view"].stride() == (10, 3)
    assert t["transposed"].stride() == (1, 3)
    t._metadata = collections.OrderedDict([("", {"version": 1}), ("view", {"version": 2})])
    return t


class Wrapped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x))


def wrapped_checkpoint():
    torch.manual_seed(5)
    model = torch.nn.DataParallel(Wrapped())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 6, 6)).sum().backward()  # one step: Adam has state tensors, bn has statistics
    opt.step()
    return {"state_dict": model.state_dict(), "epoch": 7, "best_score": np.float64(0.8125),
            "optimizer": opt.state_dict()}


def walk(obj, path, out):
    """The tensors the C reader reports: (path joined by '/', innermost key) -> tensor."""
    if isinstance(obj, torch.Tensor):
        out[(path, None)] = obj
        return
    if isinstance(obj, dict):
        items = [(str(k), v) for k, v in obj.items() if isinstance(k, (str, int))]
    elif isinstance(obj, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(obj)]
    else:
        return
    for k, v in items:
        if isinstance(v, torch.Tensor):
            out[(path, k)] = v
        else:
            walk(v, k if not path else path + "/" + k, out)


def write_sidecar(obj, name):
    from safetensors.torch import save_file

    found = {}
    walk(obj, "", found)
    tensors = {}
    for (path, key), t in found.items():
        tensors[key if not path else path + "/" + key] = t.detach().clone().contiguous()
    save_file(tensors, os.path.join(OUT, name + ".expect.safetensors"))


STORAGE_DTYPE_SIZE = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
                      "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
                      "BoolStorage": 1}


def storage_sizes(pkl):
    """Element size of each storage key, read from the persistent ids of a zip checkpoint's data.pkl."""
    sizes = {}

    class U(pickle.Unpickler):
        def persistent_load(self, pid):
            sizes[pid[2]] = STORAGE_DTYPE_SIZE[pid[1].__name__]
            return torch.zeros(0)

        def find_class(self, module, name):
            if module == "torch._utils":
                return lambda *a: None
            return super().find_class(module, name)

    U(io.BytesIO(pkl)).load()
    return sizes


def big_endian_copy(src, dst):
    with zipfile.ZipFile(src) as z:
        names = z.namelist()
        prefix = names[0].split("/")[0]
        sizes = storage_sizes(z.read(prefix + "/data.pkl"))
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as o:
            for n in names:
                data = z.read(n)
                key = n[len(prefix) + len("/data/"):] if n.startswith(prefix + "/data/") else None
                if key is not None:
                    es = sizes[key]
                    if es > 1:
                        data = np.frombuffer(data, dtype="<u%d" % es).astype(">u%d" % es).tobytes()
                o.writestr(record(n), data)
            o.writestr(record(prefix + "/byteorder"), "big")


def regular_fixtures():
    os.makedirs(OUT, exist_ok=True)
    d = dtype_tensors()
    torch.save(d, os.path.join(OUT, "dtypes.zip.pth"))
    torch.save(d, os.path.join(OUT, "dtypes.legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(d, os.path.join(OUT, "dtypes.p4.pth"), pickle_protocol=4)  # FRAME, MEMOIZE, SHORT_BINUNICODE, ...
    write_sidecar(d, "dtypes")
    big_endian_copy(os.path.join(OUT, "dtypes.zip.pth"), os.path.join(OUT, "dtypes.be.pth"))
    w = wrapped_checkpoint()
    torch.save(w, os.path.join(OUT, "wrapped.zip.pth"))
    torch.save(w, os.path.join(OUT, "wrapped.legacy.pth"), _use_new_zipfile_serialization=False)
    write_sidecar(w, "wrapped")
    # both formats load back in PyTorch to the same bytes (the files are what torch.save wrote)
    raw = lambda t: t.contiguous().reshape(-1).view(torch.uint8)
    for f in ("dtypes.zip.pth", "dtypes.legacy.pth", "dtypes.p4.pth"):
        back = torch.load(os.path.join(OUT, f))
        for k, v in d.items():
            assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(raw(back[k]), raw(v)), (f, k)


# ------------------------------------------------------------------ hostile files, built by hand


class Storage:
    """A storage persistent id: ('storage', torch.<type>, key, 'cpu', numel)."""

    def __init__(self, key, numel, kind=torch.FloatStorage):
        self.key, self.numel, self.kind = key, numel, kind


class Tensor:
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj):
    b = io.BytesIO()
    TorchLikePickler(b, protocol=2).dump(obj)
    return b.getvalue()


def record(name, compress=zipfile.ZIP_STORED):
    """A zip entry with a fixed date, so that a rerun writes the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compress
    return info


def zip_checkpoint(path, pkl, records, compress=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(record("archive/data.pkl"), pkl)
        for key, data in records.items():
            z.writestr(record("archive/data/" + key, (compress or {}).get(key, zipfile.ZIP_STORED)), data)
        z.writestr(record("archive/version"), "3\n")


def legacy_checkpoint(path, obj_pkl, storages):
    """magic, protocol, sys info, the object, the keys, then per storage: int64 numel + little-endian data."""
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True,
                           "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
             obj_pkl, pickle.dumps([k for k, _, _ in storages], protocol=2)]
    for _, numel, data in storages:
        parts.append(struct.pack("<q", numel) + data)
    with open(path, "wb") as f:
        f.write(b"".join(parts))


def evil(module, name, arg_pickle):
    """A protocol-2 pickle calling module.name(*args): what an attacker writes by hand."""
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + arg_pickle + b"R."


def short_unicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def patch_sizes(path, record, size, comp_size=None):
    """Overwrites a record's sizes in its local header and in the central directory."""
    data = bytearray(open(path, "rb").read())
    name = record.encode()
    at = 0
    while True:
        at = data.find(name, at)
        if at < 0:
            break
        if data[at - 30:at - 26] == b"PK\x03\x04":
            hdr = at - 30
            if comp_size is not None:
                struct.pack_into("<I", data, hdr + 18, comp_size)
            struct.pack_into("<I", data, hdr + 22, size)
        elif data[at - 46:at - 42] == b"PK\x01\x02":
            hdr = at - 46
            if comp_size is not None:
                struct.pack_into("<I", data, hdr + 20, comp_size)
            struct.pack_into("<I", data, hdr + 24, size)
        at += 1
    open(path, "wb").write(bytes(data))


class Py2OrderedDict:
    """Python 2's OrderedDict.__reduce__: (OrderedDict, ([[key, value], ...],))."""

    def __init__(self, items):
        self.items = items

    def __reduce__(self):
        return (collections.OrderedDict, ([[k, v] for k, v in self.items],))


class OldTensor(Tensor):
    """PyTorch 0.3's torch._utils._rebuild_tensor(storage, offset, size, stride)."""

    def __reduce__(self):
        return (torch._utils._rebuild_tensor, self.args[:4])


def py2_style(path):
    """{'a': arange(6) * 0.5 as (2, 3) float32, 'b': int64 [7, -1]} as Python 2 wrote it: byte-string keys
    (BINSTRING, made here from the BINUNICODE opcodes), OrderedDict pairs as lists, _rebuild_tensor."""
    obj = Py2OrderedDict([("a", OldTensor(Storage("0", 6), 0, (2, 3), (3, 1))),
                          ("b", OldTensor(Storage("1", 2, torch.LongStorage), 0, (2,), (1,)))])
    pkl = torch_pickle(obj)
    for text in ("a", "b", "storage", "cpu", "0", "1"):
        b = text.encode()
        pkl = pkl.replace(b"X" + struct.pack("<I", len(b)) + b, b"T" + struct.pack("<I", len(b)) + b)
    assert b"T\x07\x00\x00\x00storage" in pkl
    legacy_checkpoint(path, pkl, [("0", 6, (np.arange(6, dtype="<f4") * 0.5).tobytes()),
                                  ("1", 2, np.array([7, -1], dtype="<i8").tobytes())])


def overlapping_zip(path):
    """A zip written by hand: the pickle uses storages 0..9 of 1000 floats, the central directory has an entry for
    each, and all ten point at the one local record of storage 0."""
    import zlib

    pkl = torch_pickle({str(k): Tensor(Storage(str(k), 1000), 0, (1000,), (1,)) for k in range(10)})
    data0 = np.arange(1000, dtype="<f4").tobytes()
    out, central, offsets = bytearray(), [], {}

    def local(name, data):
        offsets[name] = len(out)
        out.extend(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data), len(data),
                               len(name), 0) + name + data)

    def entry(name, target, data):
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data),
                                   len(data), len(name), 0, 0, 0, 0, 0, offsets[target]) + name)

    local(b"archive/data.pkl", pkl)
    local(b"archive/data/0", data0)
    entry(b"archive/data.pkl", b"archive/data.pkl", pkl)
    for k in range(10):
        entry(b"archive/data/%d" % k, b"archive/data/0", data0)
    cd = b"".join(central)
    out.extend(cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(cd), len(out), 0))
    open(path, "wb").write(bytes(out))


def hostile_fixtures():
    os.makedirs(HOSTILE, exist_ok=True)
    f32 = lambda n: np.arange(n, dtype="<f4").tobytes()
    ok_storage = Storage("0", 10)
    readme = []

    def put(name, what):
        readme.append("%-28s %s" % (name, what))

    # code execution: each would create pn_pwned_<x> in the working folder when unpickled by Python
    calls = {
        "os_system": evil("os", "system", short_unicode("touch pn_pwned_system") + b"\x85"),
        "builtins_eval": evil("builtins", "eval", short_unicode("open('pn_pwned_eval', 'w').close()") + b"\x85"),
        "subprocess_popen": evil("subprocess", "Popen", b"](" + short_unicode("touch") +
                                 short_unicode("pn_pwned_popen") + b"e\x85"),
    }
    with tempfile.TemporaryDirectory() as tmp:  # prove each pickle really runs its command in Python
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for k, p in calls.items():
                r = pickle.loads(p)
                if hasattr(r, "wait"):
                    r.wait()
            made = sorted(os.listdir(tmp))
        finally:
            os.chdir(cwd)
        assert made == ["pn_pwned_eval", "pn_pwned_popen", "pn_pwned_system"], made
    zip_checkpoint(os.path.join(HOSTILE, "os_system.pth"), calls["os_system"], {})
    put("os_system.pth", "zip; data.pkl calls os.system('touch pn_pwned_system')")
    legacy_checkpoint(os.path.join(HOSTILE, "builtins_eval.legacy.pth"), calls["builtins_eval"], [])
    put("builtins_eval.legacy.pth", "legacy; the object pickle calls builtins.eval(...) creating pn_pwned_eval")
    zip_checkpoint(os.path.join(HOSTILE, "subprocess_popen.pth"), calls["subprocess_popen"], {})
    put("subprocess_popen.pth", "zip; data.pkl calls subprocess.Popen(['touch', 'pn_pwned_popen'])")
    # a valid tensor next to the call, deep in a dict: the call is refused wherever it is
    tensor = torch_pickle(Tensor(ok_storage, 0, (10,), (1,)))[2:-1]  # the tensor's opcodes, without PROTO and STOP
    nested = (b"\x80\x02}(" + short_unicode("weight") + tensor + short_unicode("evil") +
              calls["os_system"][2:-1] + b"u.")  # {'weight': tensor, 'evil': os.system(...)}
    zip_checkpoint(os.path.join(HOSTILE, "nested_call.pth"), nested, {"0": f32(10)})
    put("nested_call.pth", "zip; a state dict whose second value is os.system(...)")
    # a whole module object (torch.save(model)), as people do by mistake
    torch.save(torch.nn.Conv2d(1, 1, 1), os.path.join(HOSTILE, "whole_module.pth"))
    put("whole_module.pth", "zip; torch.save(nn.Conv2d(1, 1, 1)): refused global torch.nn.modules.conv.Conv2d")
    # opcodes
    good = torch_pickle({"w": Tensor(ok_storage, 0, (10,), (1,))})
    zip_checkpoint(os.path.join(HOSTILE, "unknown_opcode.pth"), good[:2] + b"\xff" + good[2:], {"0": f32(10)})
    put("unknown_opcode.pth", "zip; byte 0xff after PROTO")
    zip_checkpoint(os.path.join(HOSTILE, "truncated_pickle.pth"), good[: len(good) // 2], {"0": f32(10)})
    put("truncated_pickle.pth", "zip; data.pkl cut in half")
    # tensors against their storages
    zip_checkpoint(os.path.join(HOSTILE, "tensor_past_storage.pth"),
                   torch_pickle({"w": Tensor(Storage("0", 4), 0, (10,), (1,))}), {"0": f32(4)})
    put("tensor_past_storage.pth", "zip; a (10,) tensor over a 4-element storage")
    zip_checkpoint(os.path.join(HOSTILE, "short_record.pth"), good, {"0": f32(4)})
    put("short_record.pth", "zip; the storage declares 10 floats, its record holds 16 bytes")
    zip_checkpoint(os.path.join(HOSTILE, "offset_past_storage.pth"),
                   torch_pickle({"w": Tensor(ok_storage, 1000, (2,), (1,))}), {"0": f32(10)})
    put("offset_past_storage.pth", "zip; storage offset 1000 in a 10-element storage")
    zip_checkpoint(os.path.join(HOSTILE, "negative_shape.pth"),
                   torch_pickle({"w": Tensor(ok_storage, 0, (-3, 2), (2, 1))}), {"0": f32(10)})
    put("negative_shape.pth", "zip; shape (-3, 2)")
    zip_checkpoint(os.path.join(HOSTILE, "absurd_shape.pth"),
                   torch_pickle({"w": Tensor(ok_storage, 0, (2**40, 2**40), (2**40, 1))}), {"0": f32(10)})
    put("absurd_shape.pth", "zip; shape (2^40, 2^40)")
    legacy_checkpoint(os.path.join(HOSTILE, "negative_numel.legacy.pth"),
                      torch_pickle({"w": Tensor(Storage("1", -5), 0, (2,), (1,))}), [("1", -5, b"")])
    put("negative_numel.legacy.pth", "legacy; a storage of -5 elements")
    # the zip container
    two = torch_pickle({"a": Tensor(Storage("0", 10), 0, (10,), (1,)), "b": Tensor(Storage("1", 10), 0, (10,), (1,))})
    zip_checkpoint(os.path.join(HOSTILE, "missing_record.pth"), two, {"0": f32(10)})
    put("missing_record.pth", "zip; the pickle uses storages 0 and 1, archive/data/1 is absent")
    p = os.path.join(HOSTILE, "size_lie_stored.pth")
    zip_checkpoint(p, good, {"0": f32(10)})
    patch_sizes(p, "archive/data/0", 1 << 30, 1 << 30)
    put("size_lie_stored.pth", "zip; a stored record whose headers claim 1 GiB")
    p = os.path.join(HOSTILE, "size_lie_deflate.pth")
    zip_checkpoint(p, torch_pickle({"w": Tensor(Storage("0", 1 << 28), 0, (1 << 28,), (1,))}), {"0": f32(1024)},
                   compress={"0": zipfile.ZIP_DEFLATED})
    patch_sizes(p, "archive/data/0", 1 << 30)
    put("size_lie_deflate.pth", "zip; a deflated record of ~1 KB claiming 1 GiB (a zip bomb's size)")
    overlapping_zip(os.path.join(HOSTILE, "overlapping_records.pth"))
    put("overlapping_records.pth", "zip; ten central entries share one 4000-byte record (an overlapping zip bomb)")
    deep = b"\x80\x02" + b"]" * 100 + b"a" * 99 + b"."
    zip_checkpoint(os.path.join(HOSTILE, "deep_nesting.pth"), deep, {})
    put("deep_nesting.pth", "zip; lists nested 100 deep")
    # not hostile: how Python 2 and PyTorch 0.3 wrote it (Cadene's and the first torchvision files are that old)
    py2_style(os.path.join(OUT, "py2_style.legacy.pth"))
    with open(os.path.join(HOSTILE, "README"), "w") as f:
        f.write("Hostile checkpoints made by tests/ref/make_pth_fixtures.py; tests/test_pth.c expects one clear error\n"
                "line for each, and that no pn_pwned_* file appears.\n\n" + "\n".join(readme) + "\n")


# ------------------------------------------------------------------ key maps of real models


def albunet_keys():
    """The winner's AlbuNet (ternausnets) module tree, built with torchvision's resnet34: its state_dict keys."""
    import torchvision

    nf = 32

    class ConvRelu(torch.nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.conv = torch.nn.Conv2d(i, o, 3, padding=1)

    class Block(torch.nn.Module):
        def __init__(self, i, m, o):
            super().__init__()
            self.block = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), ConvRelu(i, m), ConvRelu(m, o))

    class AlbuNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torchvision.models.resnet34()
            self.conv1 = torch.nn.Sequential(self.encoder.conv1, self.encoder.bn1, self.encoder.relu,
                                             torch.nn.MaxPool2d(2, 2))
            self.conv2, self.conv3 = self.encoder.layer1, self.encoder.layer2
            self.conv4, self.conv5 = self.encoder.layer3, self.encoder.layer4
            self.center = Block(512, nf * 16, nf * 8)
            self.dec5 = Block(512 + nf * 8, nf * 16, nf * 8)
            self.dec4 = Block(256 + nf * 8, nf * 16, nf * 8)
            self.dec3 = Block(128 + nf * 8, nf * 8, nf * 2)
            self.dec2 = Block(64 + nf * 2, nf * 4, nf * 4)
            self.dec1 = Block(nf * 4, nf * 4, nf)
            self.dec0 = ConvRelu(nf, nf)
            self.final = torch.nn.Conv2d(nf, 1, 1)

    return AlbuNet().state_dict()


def keymap_cases():
    import pretrainedmodels
    import segmentation_models_pytorch as smp
    import timm
    import torchvision

    def smp_encoder_keys(enc):
        return [k for k in smp.Unet(enc, encoder_weights=None).state_dict() if k.startswith("encoder.")]

    def by_name(src, enc, dropped_prefix):
        """The source's keys minus the classifier must be smp's encoder keys without 'encoder.'."""
        want = smp_encoder_keys(enc)
        kept = [k for k in src if not k.startswith(dropped_prefix)]
        assert sorted("encoder." + k for k in kept) == sorted(want), enc
        return [(k, tuple(v.shape), "-" if k.startswith(dropped_prefix) else "encoder." + k) for k, v in src.items()]

    def by_order(src, enc, dropped_prefix):
        """timm's SE names differ from smp's: pair them in module order, shapes equal."""
        want = smp.Unet(enc, encoder_weights=None).encoder.state_dict()
        kept = [(k, v) for k, v in src.items() if not k.startswith(dropped_prefix)]
        assert len(kept) == len(want), enc
        pairs = dict()
        for (k, v), (w, u) in zip(kept, want.items()):
            assert v.shape == u.shape and k.split(".")[-1] == w.split(".")[-1], (k, w)
            pairs[k] = "encoder." + w
        return [(k, tuple(v.shape), pairs.get(k, "-")) for k, v in src.items()]

    cases = []
    tv = lambda name: getattr(torchvision.models, name)().state_dict()
    cases.append(("torchvision resnet34", "torchvision", "resnet34", "unet", by_name(tv("resnet34"), "resnet34", "fc.")))
    cases.append(("torchvision resnext50_32x4d", "torchvision", "resnext50_32x4d", "unet",
                  by_name(tv("resnext50_32x4d"), "resnext50_32x4d", "fc.")))
    cases.append(("torchvision resnet101", "torchvision", "resnet101", "unet", by_name(tv("resnet101"), "resnet101", "fc.")))
    # timm's ResNets use torchvision's names: detected (and mapped) as torchvision
    cases.append(("timm resnet50", "torchvision", "resnet50", "unet",
                  by_name(timm.create_model("resnet50").state_dict(), "resnet50", "fc.")))
    pm = lambda name: getattr(pretrainedmodels, name)(pretrained=None).state_dict()
    cases.append(("cadene se_resnet50", "cadene", "se_resnet50", "unet", by_name(pm("se_resnet50"), "se_resnet50", "last_linear.")))
    cases.append(("cadene se_resnext50_32x4d", "cadene", "se_resnext50_32x4d", "unet",
                  by_name(pm("se_resnext50_32x4d"), "se_resnext50_32x4d", "last_linear.")))
    cases.append(("cadene se_resnext101_32x4d", "cadene", "se_resnext101_32x4d", "unet",
                  by_name(pm("se_resnext101_32x4d"), "se_resnext101_32x4d", "last_linear.")))
    cases.append(("timm seresnext50_32x4d", "timm", "se_resnext50_32x4d", "unet",
                  by_order(timm.create_model("seresnext50_32x4d").state_dict(), "se_resnext50_32x4d", "fc.")))
    cases.append(("timm legacy_seresnext50_32x4d", "cadene", "se_resnext50_32x4d", "unet",
                  by_name(timm.create_model("legacy_seresnext50_32x4d").state_dict(), "se_resnext50_32x4d", "last_linear.")))
    hub = smp.Unet("resnet34", encoder_weights=None).encoder.state_dict()  # an smp-hub encoder file: no 'encoder.'
    cases.append(("smp-hub resnet34 encoder", "torchvision", "resnet34", "unet", by_name(hub, "resnet34", "fc.")))
    full = smp.Unet("se_resnext50_32x4d", encoder_weights=None, decoder_attention_type="scse").state_dict()
    cases.append(("smp Unet se_resnext50_32x4d scse", "smp", "se_resnext50_32x4d", "unet",
                  [(k, tuple(v.shape), k) for k, v in full.items()]))
    albu = albunet_keys()
    alias = ("conv1.", "conv2.", "conv3.", "conv4.", "conv5.", "encoder.fc.")
    cases.append(("ternausnets AlbuNet", "albunet", "resnet34", "albunet",
                  [(k, tuple(v.shape), "-" if k.startswith(alias) else k) for k, v in albu.items()]))
    return cases


def write_keymaps():
    lines = ["# Key maps of real models for tests/test_ckpt_map.c, made by tests/ref/make_pth_fixtures.py.",
             "# 'case <from> <encoder> <decoder> <label>' then one line per state_dict key: key, shape, expected name",
             "# ('-' = dropped). A guess line names the encoder the keys and shapes identify."]
    for label, src, enc, dec, rows in keymap_cases():
        lines.append("case %s %s %s %s" % (src, enc, dec, label))
        for k, shape, want in rows:
            lines.append("%s %s %s" % (k, ",".join(str(s) for s in shape) or "0d", want))
    with open(os.path.join(OUT, "keymaps.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ by hand: parity and bench files


def parity(binary, work):
    import segmentation_models_pytorch as smp
    import timm
    import torchvision
    from safetensors.torch import load_file, save_file

    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    cases = []
    tv = torchvision.models.resnet34()
    p = os.path.join(work, "tv_resnet34.legacy.pth")
    torch.save(tv.state_dict(), p, _use_new_zipfile_serialization=False)
    cases.append(("torchvision resnet34, legacy .pth", "resnet34", p,
                  {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}))
    se = smp.Unet("se_resnext50_32x4d", encoder_weights=None).encoder
    p = os.path.join(work, "smp_se_resnext50_32x4d_encoder.legacy.pth")
    torch.save(se.state_dict(), p, _use_new_zipfile_serialization=False)
    cases.append(("smp se_resnext50_32x4d encoder, legacy .pth", "se_resnext50_32x4d", p, se.state_dict()))
    r50 = timm.create_model("resnet50")
    p = os.path.join(work, "timm_resnet50.safetensors")
    save_file({k: v.contiguous() for k, v in r50.state_dict().items()}, p)
    cases.append(("timm resnet50, safetensors", "resnet50", p,
                  {k: v for k, v in r50.state_dict().items() if not k.startswith("fc.")}))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    np.save(os.path.join(work, "x.npy"), x.numpy())
    for label, enc, path, enc_state in cases:
        w = os.path.join(work, enc + ".safetensors")
        y = os.path.join(work, enc + ".logits.npy")
        r = subprocess.run([binary, "init", "--encoder", enc, "--encoder-weights", path, "--seed", "5", "--out", w,
                            "--force"], capture_output=True, text=True)
        if r.returncode != 0:
            print("%-45s pneumoseg init refused: %s" % (label, r.stderr.strip().splitlines()[-1]))
            continue
        r = subprocess.run([binary, "infer", "--encoder", enc, "--weights", w, "--input", os.path.join(work, "x.npy"),
                            "--save-logits", y, "--backend", "ref", "--force"], capture_output=True, text=True)
        if r.returncode != 0:
            print("%-45s pneumoseg infer failed: %s" % (label, r.stderr.strip().splitlines()[-1]))
            continue
        model = smp.Unet(enc, encoder_weights=None).eval()
        model.encoder.load_state_dict(enc_state)  # PyTorch reads the original encoder weights itself
        ours = load_file(w)
        rest = {k: v for k, v in ours.items() if not k.startswith("encoder.")}
        missing, unexpected = model.load_state_dict(rest, strict=False)
        assert not unexpected and all(k.startswith("encoder.") for k in missing), (missing, unexpected)
        with torch.no_grad():
            ref64 = model.double()(x.double()).numpy()
            ref32 = model.float()(x).numpy()
        got = np.load(y)
        err32 = float(np.abs(ref32 - ref64).max())
        tol = max(1e-4, 4 * err32)
        diff = float(np.abs(got - ref64).max())
        print("%-45s max |pneumoseg - torch f64| %.3g, torch f32 %.3g, tolerance %.3g: %s" %
              (label, diff, err32, tol, "PASS" if diff <= tol else "FAIL"))


def bench_files(work):
    import torchvision

    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    sd = torchvision.models.resnet34().state_dict()
    torch.save(sd, os.path.join(work, "resnet34.zip.pth"))
    torch.save(sd, os.path.join(work, "resnet34.legacy.pth"), _use_new_zipfile_serialization=False)
    for f in ("resnet34.zip.pth", "resnet34.legacy.pth"):
        print("%s: %d bytes" % (os.path.join(work, f), os.path.getsize(os.path.join(work, f))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parity", metavar="PNEUMOSEG", help="run the full-size parity checks with this binary")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "pth_parity"))
    ap.add_argument("--bench-files", metavar="DIR", help="write full-size resnet34 checkpoints for bench/bench_pth")
    a = ap.parse_args()
    if a.parity:
        parity(a.parity, a.work)
    elif a.bench_files:
        bench_files(a.bench_files)
    else:
        regular_fixtures()
        hostile_fixtures()
        write_keymaps()
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
        print("wrote %s: %d bytes in all" % (OUT, total))
        assert total < 1 << 20


if __name__ == "__main__":
    sys.exit(main())
