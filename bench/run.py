#!/usr/bin/env python3
"""Runs the seed workloads on lamina and its peers, alternating, and writes the table.

  bench/run.py [--build DIR] [--rounds N] [--samples N] [--out OUT] [--max-load L] [--only LIST]
               [--quick] [--mlp-epochs E] [--reference-cnn] [--threads T] [--venv DIR]
               [--background-load N]

Frameworks (each found automatically; a missing one is skipped with the reason printed):
  lamina onednn, lamina opencl (the CNN workloads; PoCL on the CPU here), lamina reference (the MLP,
  and the CNN with --reference-cnn): bench/lamina_bench.cpp, <build>/bin/lamina_bench.
  PyTorch Debian: Debian's torch 1.13 under /usr/bin/python3 (bench/torch_seed.py), with OpenBLAS as
      its libblas.so.3 (put first on LD_LIBRARY_PATH when the system's choice is another BLAS).
  PyTorch PyPI, Keras 3: the newest torch and Keras 3 (JAX backend) from PyPI, in the venv that
      bench/setup_peers.sh makes (bench/torch_seed.py, bench/keras_seed.py).
  LibTorch, tiny-dnn: Debian's LibTorch 1.13 (+ OpenBLAS) and tiny-dnn 1.0.0a3, bench/peers/*.cpp built
      by bench/setup_peers.sh into <build>/bench-peers.
--only takes a comma-separated list of: onednn, opencl, reference, torch-debian, torch-pypi, keras,
libtorch, tiny-dnn.

Workloads (same model, data, optimizer and batch everywhere; see lamina_bench.cpp, torch_seed.py):
  CNN training at batch 32 and 128 on the first --samples Fashion-MNIST images, second epoch (the first
  includes warm-up: primitive creation, compilation, first allocations); CNN inference over the 10,000
  test images in batches of 1000, after the second epoch; CNN batch-1 latency (median of 200
  single-image predictions); the seed MLP's training steps/s (batch 16, 20 epochs). Each round runs
  every workload once per framework, alternating (the order rotates from round to round), so slow
  phases of a shared machine hit all of them; the table gives medians [min-max] over the rounds and
  the peak resident memory of training and inference (data loading excluded).

--background-load N runs every workload of every framework twice in a row: on the quiet machine, then
beside N busy loops (`while :; do :; done`, one core each); the second table gives the speeds beside
the loops and each framework's share of its own quiet speed (the median of the per-round ratios).
lamina onednn runs with its default team (one thread per core, fewer while other processes hold
cores) unless --threads is given; the other frameworks get --threads threads.

Writes OUT/results.json (every run: command, output keys, load average, peak memory), OUT/results.md
(the table and the check of each target) and OUT/results.svg, plus OUT/results.png when matplotlib is
importable (run this script with the venv's python to get it; bench/run.sh does). OUT defaults to
bench/ in the build folder, bench/quick/ with --quick."""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (workload id, label, program arguments (LATENCY and MLP_EPOCHS: set by the options), metrics read from
# the output). A metric is (id, label, key in
# the output, epoch whose line is read (None: a line without epoch), higher is better (None: not a
# speed; shown but not compared)).
WORKLOADS = [
    ('cnn_b32', 'seed CNN, batch 32', ['cnn', '--batch', '32', '--epochs', '2', '--latency', 'LATENCY'],
     [('train_b32', 'CNN training, batch 32 (samples/s)', 'train_samples_per_s', 2, True),
      ('infer_b1000', 'CNN inference, batch 1000 (samples/s)', 'infer_samples_per_s', 2, True),
      ('latency_b1', 'CNN latency, batch 1 (ms)', 'latency_ms', None, False),
      ('acc_b32', 'CNN test accuracy after epoch 2, batch 32', 'test_acc', 2, None)]),
    ('cnn_b128', 'seed CNN, batch 128', ['cnn', '--batch', '128', '--epochs', '2'],
     [('train_b128', 'CNN training, batch 128 (samples/s)', 'train_samples_per_s', 2, True),
      ('acc_b128', 'CNN test accuracy after epoch 2, batch 128', 'test_acc', 2, None)]),
    # 20 epochs (25,000 steps; --mlp-epochs) rather than the shared peer script's 5, everywhere: a
    # sub-second run is at the mercy of one stray process on a shared machine.
    ('mlp', 'seed MLP, batch 16', ['mlp', '--epochs', 'MLP_EPOCHS'],
     [('mlp_steps', 'MLP training, batch 16 (steps/s)', 'steps_per_s', None, True),
      ('mlp_loss', 'MLP final loss', 'loss', None, None)]),
]
CNN_WORKLOADS = {'cnn_b32', 'cnn_b128'}
# The PyTorch configurations; "best PyTorch" in a row is the fastest of those that ran (the lowest,
# for latency and memory). LibTorch counts: it is PyTorch too, and sometimes the fastest.
PYTORCHES = ['PyTorch Debian', 'PyTorch PyPI', 'LibTorch']
DEBIAN_LIBDIR = '/usr/lib/x86_64-linux-gnu'
# Every framework's name in the table, and its --only key.
KEYS = {'lamina onednn': 'onednn', 'lamina opencl': 'opencl', 'lamina reference': 'reference',
        'PyTorch Debian': 'torch-debian', 'PyTorch PyPI': 'torch-pypi', 'Keras 3': 'keras', 'LibTorch': 'libtorch',
        'tiny-dnn': 'tiny-dnn'}


class Peer:
    """One framework configuration: how to run a workload on it, and which workloads it runs."""

    def __init__(self, key, name, program, env=None, workloads=None, threads_arg=True, max_rounds=None):
        self.key, self.name, self.program = key, name, program  # program: the command before the arguments
        self.env = env or {}
        self.workloads = workloads  # None: all
        self.threads_arg = threads_arg  # takes --threads (lamina: OMP_NUM_THREADS; tiny-dnn: nothing)
        self.max_rounds = max_rounds  # None: every round
        self.info = None  # version / BLAS / threads, from its first run's output

    def runs(self, workload, round_):
        return ((self.workloads is None or workload in self.workloads)
                and (self.max_rounds is None or round_ <= self.max_rounds))


def probe(cmd):
    """Runs a short check command; returns (ok, its first output line or error tail)."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    text = (r.stdout if r.returncode == 0 else r.stderr or r.stdout).strip()
    return r.returncode == 0, (text.splitlines() or [''])[-1 if r.returncode else 0]


def openblas_env():
    """Environment that makes Debian's torch / LibTorch load OpenBLAS as libblas.so.3, and a note."""
    system = os.path.realpath(os.path.join(DEBIAN_LIBDIR, 'libblas.so.3'))
    if 'openblas' in system:
        return {}, 'OpenBLAS is the system libblas.so.3'
    for variant in ('openblas-pthread', 'openblas-openmp', 'openblas-serial'):
        libdir = os.path.join(DEBIAN_LIBDIR, variant)
        if os.path.exists(os.path.join(libdir, 'libblas.so.3')):
            return {'LD_LIBRARY_PATH': libdir}, f'OpenBLAS through LD_LIBRARY_PATH={libdir}'
    return {}, f'OpenBLAS not installed: libblas.so.3 is {system} (bench/setup_peers.sh installs it)'


def find_peers(a):
    """The frameworks this machine can run, in run order, and (name, reason) for the ones skipped."""
    peers, skipped = [], []
    bench = os.path.join(a.build, 'bin', 'lamina_bench')
    plugins = os.path.join(a.build, 'lib', 'lamina', 'plugins')
    omp = {'OMP_NUM_THREADS': str(a.threads)}
    for backend, workloads, rounds in (('onednn', None, None),
                                       ('opencl', CNN_WORKLOADS, a.opencl_rounds),
                                       ('reference', None if a.reference_cnn else {'mlp'}, None)):
        name = f'lamina {backend}'
        if not os.access(bench, os.X_OK):
            skipped.append((name, f'no {bench}: build it (bench/run.sh does) or give --build'))
        elif not glob.glob(os.path.join(plugins, f'*backend_{backend}.so')):
            skipped.append((name, f'no {backend} plugin in {plugins} (not built here)'))
        else:
            env = dict(omp, POCL_MAX_PTHREAD_COUNT=str(a.threads)) if backend == 'opencl' else omp
            if backend == 'onednn' and not a.threads_given:
                env = {}  # its default team: one thread per core, fewer while other processes hold cores
            peers.append(Peer(backend, name, [bench], env, workloads, threads_arg=False, max_rounds=rounds))

    blas_env, blas_note = openblas_env()
    blas_env = dict(blas_env, OPENBLAS_NUM_THREADS=str(a.threads))
    ok, msg = probe(['/usr/bin/python3', '-c', 'import torch; print(torch.__version__)'])
    if ok:
        peers.append(Peer('torch-debian', 'PyTorch Debian', ['/usr/bin/python3', os.path.join(HERE, 'torch_seed.py')],
                          blas_env))
    else:
        skipped.append(('PyTorch Debian', f'/usr/bin/python3 cannot import torch ({msg}); apt-get install python3-torch'))

    venv_python = os.path.join(a.venv, 'bin', 'python')
    if not os.access(venv_python, os.X_OK):
        for name in ('PyTorch PyPI', 'Keras 3'):
            skipped.append((name, f'no venv at {a.venv} (bench/setup_peers.sh makes it)'))
    else:
        ok, msg = probe([venv_python, '-c', 'import torch; print(torch.__version__)'])
        if ok:
            peers.append(Peer('torch-pypi', 'PyTorch PyPI', [venv_python, os.path.join(HERE, 'torch_seed.py')]))
        else:
            skipped.append(('PyTorch PyPI', f'the venv cannot import torch ({msg})'))
        keras_env = {'KERAS_BACKEND': os.environ.get('KERAS_BACKEND', 'jax')}
        ok, msg = probe([venv_python, '-c', 'import os; os.environ.setdefault("KERAS_BACKEND", "jax"); '
                                            'import keras; print(keras.__version__)'])
        if ok and msg.startswith('3'):
            peers.append(Peer('keras', 'Keras 3', [venv_python, os.path.join(HERE, 'keras_seed.py')], keras_env))
        else:
            skipped.append(('Keras 3', f'the venv has no Keras 3 with the {keras_env["KERAS_BACKEND"]} backend ({msg})'))

    for key, name, exe, env in (('libtorch', 'LibTorch', 'libtorch_bench', blas_env),
                                ('tiny-dnn', 'tiny-dnn', 'tinydnn_bench', {})):
        path = os.path.join(a.peers_build, exe)
        if os.access(path, os.X_OK):
            peers.append(Peer(key, name, [path], env, threads_arg=(key != 'tiny-dnn'),
                              max_rounds=a.tinydnn_rounds if key == 'tiny-dnn' else None))
        else:
            skipped.append((name, f'no {path} (bench/setup_peers.sh builds it)'))

    if a.only:
        wanted = {k.strip() for k in a.only.split(',') if k.strip()}
        unknown = wanted - set(KEYS.values())
        if unknown:
            sys.exit(f'--only: unknown framework(s) {", ".join(sorted(unknown))}; known: {", ".join(KEYS.values())}')
        skipped = [(n, r) for n, r in skipped if KEYS[n] in wanted]
        peers = [p for p in peers if p.key in wanted]
    return peers, skipped, blas_note


def parse_output(text):
    """key: value pairs, per epoch line ('epoch' key) and for lines without one."""
    per_epoch, plain = {}, {}
    for line in text.splitlines():
        pairs = dict(re.findall(r'(\w+): (\S+)', line))
        if not pairs:
            continue
        if 'epoch' in pairs:
            per_epoch[int(pairs['epoch'])] = pairs
        else:
            plain.update(pairs)
    return per_epoch, plain


class Popen(subprocess.Popen):
    """subprocess.Popen that keeps the child's peak resident memory (ru_maxrss) when it is reaped."""
    peak_rss_mb = None

    def _try_wait(self, wait_flags):
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            pid, status = self.pid, 0
        else:
            if pid == self.pid:
                self.peak_rss_mb = usage.ru_maxrss / 1024.0
        return pid, status


def run(cmd, env, max_load, timeout):
    """Runs cmd; returns (output, seconds, process peak RSS in MB, load average before, exit status)."""
    if max_load:
        waited = 0
        while os.getloadavg()[0] > max_load and waited < 600:
            time.sleep(5)
            waited += 5
    load = os.getloadavg()[0]
    start = time.time()
    proc = Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += '\n(timed out)'
    return out, time.time() - start, proc.peak_rss_mb, load, proc.returncode


def describe(peer, plain):
    """A one-line description of what ran, from the "key: value" lines a program prints first."""
    if peer.key in ('onednn', 'opencl', 'reference'):
        threads = peer.env.get('OMP_NUM_THREADS')
        team = f'{threads} threads' if threads else 'its default team (one thread per core, adapting to load)'
        return f"lamina, {plain.get('backend', peer.key)} backend, {team}"
    if 'keras' in plain:
        return f"Keras {plain['keras']}, {plain.get('backend', '?')} backend, {plain.get('threads', '?')} threads"
    if 'tiny_dnn' in plain:
        kernels = f"{plain['engine']} kernels, " if 'engine' in plain else ''
        return f"tiny-dnn {plain['tiny_dnn']}, {kernels}std::async threads, one per core"
    version = plain.get('torch') or plain.get('libtorch') or '?'
    return f"{version}, {plain.get('blas', '?')} BLAS, {plain.get('threads', '?')} threads"


def machine():
    cpu, isa = 'unknown', 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
        m = re.search(r'^model name\s*:\s*(.*)$', text, re.M)
        cpu = m.group(1).strip() if m else cpu
        isa = 'AVX-512' if 'avx512f' in text else 'AVX2' if 'avx2' in text else 'SSE'
    except OSError:
        pass
    try:
        with open('/etc/debian_version') as f:
            distro = 'Debian ' + f.read().strip()
    except OSError:
        distro = platform.system()
    return {'cpu': cpu, 'isa': isa, 'cores': os.cpu_count(), 'kernel': platform.release(), 'distro': distro}


def fmt(values):
    if not values:
        return ''
    med = statistics.median(values)
    digits = 3 if med < 1 else 2 if med < 100 else 0
    text = f'{med:,.{digits}f}'
    if len(values) > 1 and min(values) != max(values):
        text += f' [{min(values):,.{digits}f}–{max(values):,.{digits}f}]'
    return text


def best_pytorch(row):
    """(name, median) of the best PyTorch configuration in a row, or (None, None)."""
    candidates = [(f, row['medians'][f]) for f in PYTORCHES if row['medians'].get(f)]
    if not candidates:
        return None, None
    pick = max if row['higher'] else min
    return pick(candidates, key=lambda c: c[1])


def ratio(mine, theirs, higher):
    """Above 1: `mine` is better (faster, lower latency, less memory)."""
    if not mine or not theirs:
        return None
    return mine / theirs if higher else theirs / mine


def check_targets(rows):
    """The issue's targets, each (text, met: True / False / None when not measured, detail)."""
    by_id = {r['id']: r for r in rows}
    out = []

    def onednn(mid):
        return by_id[mid]['medians'].get('lamina onednn') if mid in by_id else None

    def against_best(mid, factor, text):
        name, value = best_pytorch(by_id[mid]) if mid in by_id else (None, None)
        r = ratio(onednn(mid), value, by_id[mid]['higher']) if mid in by_id else None
        out.append((text, None if r is None else r >= factor,
                    f'{r:.2f}× {name}' if r is not None else 'not measured (onednn or every PyTorch missing)'))

    v = onednn('train_b128')
    out.append(('CNN training, batch 128, onednn ≥ 2,500 samples/s', None if v is None else v >= 2500,
                f'{v:,.0f} samples/s' if v else 'not measured'))
    against_best('train_b128', 1.5, 'CNN training, batch 128 ≥ 1.5× the best PyTorch')
    against_best('train_b32', 1.5, 'CNN training, batch 32 ≥ 1.5× the best PyTorch')
    if 'infer_b1000' in by_id:  # every peer, Keras 3 included
        row = by_id['infer_b1000']
        peers = {f: v for f, v in row['medians'].items() if v and not f.startswith('lamina')}
        mine = onednn('infer_b1000')
        if peers and mine:
            best = max(peers, key=peers.get)
            out.append(('CNN inference, batch 1000 ≥ 1.5× every peer', mine / peers[best] >= 1.5,
                        f'{mine / peers[best]:.2f}× {best}'))
        else:
            out.append(('CNN inference, batch 1000 ≥ 1.5× every peer', None, 'not measured'))
    v = onednn('latency_b1')
    out.append(('CNN batch-1 latency reported', None if v is None else True,
                f'{v:.3f} ms' if v else 'not measured'))
    v = onednn('mlp_steps')
    out.append(('MLP, batch 16, ≥ 46,000 steps/s', None if v is None else v >= 46000,
                f'{v:,.0f} steps/s' if v else 'not measured'))
    lt = by_id['mlp_steps']['medians'].get('LibTorch')
    r = ratio(v, lt, True)
    out.append(('MLP ≥ 6× LibTorch C++', None if r is None else r >= 6,
                f'{r:.2f}×' if r is not None else 'not measured (LibTorch or onednn missing)'))
    for wid, wlabel, _, _ in WORKLOADS:
        row = by_id[f'rss_{wid}']
        name, value = best_pytorch(row)  # the PyTorch that used the least memory
        mine = row['medians'].get('lamina onednn')
        met = None if mine is None or value is None else mine <= value
        out.append((f'peak memory, {wlabel}: onednn ≤ PyTorch', met,
                    f'{mine:,.0f} MB against {value:,.0f} MB ({name})' if met is not None else 'not measured'))
    return out


def under_load_table(rows, frameworks, quiet, loaded, busy):
    """The speeds beside the busy loops, each with its share of the same round's quiet speed."""
    def value(records, f, mid, round_):
        return next((r['metrics'][mid] for r in records
                     if r['framework'] == f and r['round'] == round_ and mid in r['metrics']), None)

    lines = [f'Beside {busy} busy loop(s) (each run right after its quiet run; in brackets the share of the '
             'quiet speed, median of the rounds):', '',
             '| workload | ' + ' | '.join(frameworks) + ' |', '|' + '---|' * (len(frameworks) + 1)]
    shares = {}
    for r in rows:
        if not r['higher'] or r['id'].startswith('rss_'):
            continue
        cells = [r['label']]
        for f in frameworks:
            rounds = sorted({x['round'] for x in loaded if x['framework'] == f and r['id'] in x['metrics']})
            speeds = [value(loaded, f, r['id'], n) for n in rounds]
            ratios = [s / q for s, n in zip(speeds, rounds) if (q := value(quiet, f, r['id'], n))]
            share = statistics.median(ratios) if ratios else None
            shares[(r['id'], f)] = share
            cells.append(fmt(speeds) + (f' ({share:.0%})' if share is not None else ''))
        lines.append('| ' + ' | '.join(cells) + ' |')
    mine = shares.get(('train_b32', 'lamina onednn'))
    theirs = {f: shares.get(('train_b32', f)) for f in PYTORCHES if shares.get(('train_b32', f)) is not None}
    if mine is not None and theirs:
        best = max(theirs, key=theirs.get)
        verdict = 'met' if mine > theirs[best] else 'not met'
        lines += ['', f'Target: CNN training at batch 32, onednn keeps a larger share of its quiet speed than '
                      f'every PyTorch: {mine:.0%} against {theirs[best]:.0%} ({best}): {verdict}.']
    return '\n'.join(lines) + '\n'


def svg_chart(rows, frameworks, path):
    """Horizontal bars: each framework's speed relative to the best PyTorch of the row (= 1)."""
    metrics = [r for r in rows if r['higher'] is not None and best_pytorch(r)[1] and r['id'].startswith(
        ('train', 'infer', 'latency', 'mlp_steps'))]
    colors = ['#1f77b4', '#17becf', '#aec7e8', '#d62728', '#ff7f0e', '#9467bd', '#8c564b', '#7f7f7f']
    width, bar = 820, 20
    rel = {(r['id'], f): ratio(r['medians'].get(f), best_pytorch(r)[1], r['higher']) for r in metrics
           for f in frameworks}
    top = max([v for v in rel.values() if v] + [1.0])
    height = 50 + sum(16 + bar * sum(1 for f in frameworks if rel[(r['id'], f)]) + 14 for r in metrics)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="20" font-size="14">speed relative to the best PyTorch of each row '
           '(longer is better; for latency, the inverse ratio)</text>']
    y = 40
    for r in metrics:
        out.append(f'<text x="10" y="{y + 12}" font-weight="bold">{r["label"]}</text>')
        y += 16
        for k, f in enumerate(frameworks):
            v = rel[(r['id'], f)]
            if not v:
                continue
            w = max(1, int(v / top * (width - 360)))
            out.append(f'<text x="20" y="{y + 13}">{f}</text>')
            out.append(f'<rect x="160" y="{y}" width="{w}" height="{bar - 5}" fill="{colors[k % len(colors)]}"/>')
            out.append(f'<text x="{166 + w}" y="{y + 13}">{v:.2f}×</text>')
            y += bar
        y += 14
    out.append('</svg>')
    with open(path, 'w') as fh:
        fh.write('\n'.join(out))


def png_chart(rows, frameworks, path):
    """The same chart through matplotlib; False when matplotlib is not importable."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics = [r for r in rows if r['higher'] is not None and best_pytorch(r)[1] and r['id'].startswith(
        ('train', 'infer', 'latency', 'mlp_steps'))]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    n = len(frameworks)
    width = 0.8 / n
    for k, f in enumerate(frameworks):
        values = [ratio(r['medians'].get(f), best_pytorch(r)[1], r['higher']) or 0 for r in metrics]
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(metrics))]
        ax.bar(xs, values, width, label=f)
    ax.axhline(1.0, color='black', linewidth=0.8)
    ax.set_yscale('log')
    labels = [r['label'].replace(' (ms)', ' (inverse)').replace(' (', '\n(') for r in metrics]
    ax.set_xticks(range(len(metrics)), labels, fontsize=8)
    ax.set_ylabel('relative to the best PyTorch (log scale)')
    ax.set_title('Seed workloads: speed relative to the best PyTorch of each (higher is better)')
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--build', default=os.environ.get('LAMINA_BUILD', os.path.join(ROOT, 'build')))
    p.add_argument('--peers-build', help='where bench/peers was built (default: BUILD/bench-peers)')
    p.add_argument('--venv', default=os.environ.get('LAMINA_BENCH_VENV',
                                                    os.path.expanduser('~/.cache/lamina/bench-venv')))
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--samples', type=int, default=6000, help='training images of the CNN workloads')
    p.add_argument('--threads', type=int,
                   help='threads of every framework (default: the CPUs this process may use; lamina onednn '
                        'then runs its default team, which adapts to load)')
    p.add_argument('--out', help='where the results go (default: bench/ in the build folder)')
    p.add_argument('--max-load', type=float, default=0.0,
                   help='before each run, wait (up to 10 min) for the 1-minute load average to drop below this')
    p.add_argument('--only', help='comma-separated frameworks to run (see above)')
    p.add_argument('--mlp-epochs', type=int, default=20, help='epochs of the MLP workload (default 20)')
    p.add_argument('--quick', action='store_true',
                   help='a smoke run: 1 round, 1,000 CNN images, 2 MLP epochs, 20 latency samples')
    p.add_argument('--reference-cnn', action='store_true',
                   help='also run the CNN workloads on the reference backend (slow: minutes per run)')
    p.add_argument('--opencl-rounds', type=int, default=2,
                   help='rounds that include lamina opencl (default 2: its runs are long)')
    p.add_argument('--tinydnn-rounds', type=int, default=2,
                   help='rounds that include tiny-dnn (default 2: its CNN runs are the longest, minutes each)')
    p.add_argument('--background-load', type=int, default=0, metavar='N',
                   help='also run every workload beside N busy loops, right after its quiet run (see above)')
    a = p.parse_args()
    a.threads_given = a.threads is not None
    if not a.threads_given:
        a.threads = len(os.sched_getaffinity(0))
    a.peers_build = a.peers_build or os.path.join(a.build, 'bench-peers')
    if a.quick:
        a.rounds, a.samples, a.mlp_epochs, latency = 1, 1000, 2, '20'
    else:
        latency = '200'
    workloads = [(w, l, [{'MLP_EPOCHS': str(a.mlp_epochs), 'LATENCY': latency}.get(x, x) for x in args], m)
                 for w, l, args, m in WORKLOADS]
    a.out = a.out or os.path.join(a.build, 'bench', 'quick' if a.quick else '')

    peers, skipped, blas_note = find_peers(a)
    for name, reason in skipped:
        print(f'skipped {name}: {reason}', flush=True)
    if not peers:
        sys.exit('nothing to run')
    frameworks = [p.name for p in peers]
    print(f'running: {", ".join(frameworks)}; {a.rounds} rounds, {a.threads} threads; Debian BLAS: {blas_note}',
          flush=True)

    base_env = dict(os.environ)
    for var in ('OMP_NUM_THREADS', 'LD_LIBRARY_PATH', 'PYTHONPATH'):
        base_env.pop(var, None)  # each peer gets exactly the settings it names

    raw = []  # one record per run
    for round_ in range(1, a.rounds + 1):
        order = peers[(round_ - 1) % len(peers):] + peers[:(round_ - 1) % len(peers)]
        for wid, wlabel, args, metrics in workloads:
            for peer, busy in ((p, n) for p in order for n in [0] + [a.background_load] * bool(a.background_load)):
                if not peer.runs(wid, round_):
                    continue
                cmd = peer.program + args
                if args[0] == 'cnn':
                    cmd += ['--samples', str(a.samples)]
                if peer.threads_arg:
                    cmd += ['--threads', str(a.threads)]
                if peer.key in ('onednn', 'opencl', 'reference'):
                    cmd += ['--backend', peer.key]
                env = dict(base_env, **peer.env)
                loops = [subprocess.Popen(['sh', '-c', 'while :; do :; done']) for _ in range(busy)]
                try:  # the load average is high by design beside the loops: no waiting for it
                    out, seconds, rss, load, rc = run(cmd, env, 0 if busy else a.max_load,
                                                      timeout=600 if a.quick else 1800)
                finally:
                    for loop in loops:
                        loop.kill()
                        loop.wait()
                per_epoch, plain = parse_output(out)
                peer.info = peer.info or (describe(peer, plain) if rc == 0 else None)
                rec = {'round': round_, 'workload': wid, 'framework': peer.name, 'command': ' '.join(cmd),
                       'env': peer.env, 'seconds': round(seconds, 2), 'peak_rss_mb': rss and round(rss, 1),
                       'load_before': load, 'load_after': os.getloadavg()[0], 'returncode': rc,
                       'background_load': busy, 'metrics': {}}
                for mid, _, key, epoch, _ in metrics:
                    src = per_epoch.get(epoch, {}) if epoch else plain
                    if key in src and rc == 0:
                        rec['metrics'][mid] = float(src[key])
                if 'run_peak_rss_mb' in plain and rc == 0:
                    rec['metrics']['run_rss'] = float(plain['run_peak_rss_mb'])
                if rc != 0:
                    rec['error'] = out[-2000:]
                raw.append(rec)
                shown = ', '.join(f'{k} {v:,.2f}' for k, v in rec['metrics'].items()) or f'FAILED (exit {rc})'
                beside = f', beside {busy} busy loop(s)' if busy else ''
                print(f'round {round_} {wid:8s} {peer.name:16s} {shown} | {seconds:.0f}s, load {load:.2f}{beside}',
                      flush=True)
                if rc != 0:
                    print('  ' + '\n  '.join(out.strip().splitlines()[-5:]), flush=True)

        report(a, workloads, peers, skipped, blas_note, raw, final=round_ == a.rounds)


def report(a, workloads, peers, skipped, blas_note, raw, final):
    """Writes results.json, .md, .svg and .png from the runs so far; prints the table when final."""
    frameworks = [p.name for p in peers]
    done = max(r['round'] for r in raw)  # rounds finished so far
    loaded = [r for r in raw if r.get('background_load')]
    raw = [r for r in raw if not r.get('background_load')]  # the main table: quiet runs
    rows = []
    for wid, wlabel, args, metrics in workloads:
        for mid, label, key, epoch, higher in metrics:
            values = {f: [r['metrics'][mid] for r in raw if r['framework'] == f and mid in r['metrics']]
                      for f in frameworks}
            rows.append({'id': mid, 'label': label, 'higher': higher, 'values': values,
                         'medians': {f: statistics.median(v) if v else None for f, v in values.items()}})
        mem = {f: [r['metrics']['run_rss'] for r in raw
                   if r['framework'] == f and r['workload'] == wid and 'run_rss' in r['metrics']]
               for f in frameworks}
        rows.append({'id': f'rss_{wid}', 'label': f'peak memory, {wlabel}, training + inference (MB)',
                     'higher': False, 'values': mem,
                     'medians': {f: statistics.median(v) if v else None for f, v in mem.items()}})
    # Speeds first, then memory, then the rows that show the frameworks train alike.
    rows.sort(key=lambda r: 2 if r['higher'] is None else 1 if r['id'].startswith('rss_') else 0)
    targets = check_targets(rows)

    loads = [r['load_before'] for r in raw] + [r['load_after'] for r in raw]
    load_range = {'min': min(loads), 'median': statistics.median(loads), 'max': max(loads)}
    result = {'machine': machine(), 'frameworks': {p.name: p.info for p in peers}, 'debian_blas': blas_note,
              'skipped': dict(skipped), 'rounds': done, 'rounds_planned': a.rounds, 'samples': a.samples, 'threads': a.threads,
              'quick': a.quick, 'load_average': load_range, 'date': time.strftime('%Y-%m-%d %H:%M %Z'),
              'targets': [{'target': t, 'met': m, 'measured': d} for t, m, d in targets],
              'rows': rows, 'runs': raw + loaded}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1)

    # The Markdown table: one column per framework, then lamina onednn against the best PyTorch of the
    # row (named), and opencl against onednn.
    has_opencl = 'lamina opencl' in frameworks
    head = ['workload'] + frameworks + ['onednn / best PyTorch'] + (['opencl / onednn'] if has_opencl else [])
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [r['label']] + [fmt(r['values'][f]) for f in frameworks]
        name, value = best_pytorch(r) if r['higher'] is not None else (None, None)
        q = ratio(r['medians'].get('lamina onednn'), value, r['higher'])
        cells.append(f'{q:.2f}× ({name})' if q else '')
        if has_opencl:
            q = ratio(r['medians'].get('lamina opencl'), r['medians'].get('lamina onednn'), r['higher']) \
                if r['higher'] is not None else None
            cells.append(f'{q:.2f}×' if q else '')
        lines.append('| ' + ' | '.join(cells) + ' |')
    m = result['machine']
    notes = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['isa']}, {m['distro']}, Linux {m['kernel']}; "
             f"{a.threads} threads for every framework. {result['date']}."]
    notes.append('Frameworks: ' + '; '.join(f'**{p.name}**: {p.info or "no successful run"}' for p in peers) + '.')
    if skipped:
        notes.append('Skipped: ' + '; '.join(f'{n} ({r})' for n, r in skipped) + '.')
    limited = '; '.join(f'{p.name}: the first {p.max_rounds}' for p in peers if p.max_rounds and p.max_rounds < done)
    limited = f' ({limited})' if limited else ''
    notes.append(f"{'Quick smoke run: ' if a.quick else ''}medians [min–max] of {done} alternating round(s)"
                 f"{'' if final else f' (of {a.rounds} planned: the run did not finish)'}"
                 f"{limited}; "
                 f"{a.samples:,} training images, second epoch; MLP {a.mlp_epochs} epochs. "
                 f"1-minute load average around the runs {load_range['min']:.1f}–{load_range['max']:.1f} "
                 f"(median {load_range['median']:.1f}; the runs themselves add up to {a.threads}). "
                 "Ratios above 1 mean lamina is better: faster, lower latency, less memory. "
                 "Best PyTorch: the fastest (lowest, for latency and memory) of PyTorch Debian, PyTorch PyPI "
                 "and LibTorch in that row.")
    check = ['| target | measured | |', '|---|---|---|']
    for text, met, detail in targets:
        check.append(f"| {text} | {detail} | {'met' if met else 'not met' if met is False else 'not measured'} |")
    md = '\n'.join(lines) + '\n\n' + '\n\n'.join(notes) + '\n\nTargets:\n\n' + '\n'.join(check) + '\n'
    if loaded:
        md += '\n' + under_load_table(rows, frameworks, raw, loaded, a.background_load)
    with open(os.path.join(a.out, 'results.md'), 'w') as f:
        f.write(md)
    chart = [f for f in frameworks if f != 'lamina reference' or a.reference_cnn]
    svg_chart(rows, chart, os.path.join(a.out, 'results.svg'))
    png = png_chart(rows, chart, os.path.join(a.out, 'results.png'))
    if not final:
        return
    print('\n' + md)
    print(f'written: {a.out}/results.json, results.md, results.svg' +
          (', results.png' if png else ' (no PNG: matplotlib is not importable by this python)'))


if __name__ == '__main__':
    main()
