#!/usr/bin/python3
"""Runs the seed workloads on lamina and on PyTorch, alternating, and writes the table.

  bench/run.py [--build DIR] [--rounds N] [--samples N] [--out OUT] [--max-load L] [--reference-cnn]

Workloads (same model, data, optimizer and batch on both sides; see lamina_bench.cpp, torch_seed.py):
  CNN training at batch 32 and 128 on the first --samples Fashion-MNIST images, second epoch (the first
  includes warm-up: primitive creation, first allocations); CNN inference over the 10,000 test images
  in batches of 1000, after the second epoch; CNN batch-1 latency (median of 200 single-image
  predictions); the seed MLP's training steps/s (batch 16, 20 epochs). Each round runs every workload once per
  framework, alternating, so slow phases of a shared machine hit both; the table gives medians
  [min-max] over the rounds and the peak resident memory of training and inference (data loading
  excluded; the JSON also has each process's overall peak).

Writes OUT/results.json, OUT/results.md and OUT/results.svg (OUT/results.png too when matplotlib is
installed); OUT defaults to bench/ in the build folder. Use Debian's /usr/bin/python3 so that the
PyTorch peer is Debian's torch."""
import argparse, json, os, platform, re, shutil, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (workload id, label, lamina_bench / torch_seed.py arguments, metrics read from the output)
# A metric is (id, label, key in the output, epoch whose line is read (None: a line without epoch),
# higher is better).
WORKLOADS = [
    ('cnn_b32', 'seed CNN, batch 32', ['cnn', '--batch', '32', '--epochs', '2', '--latency', '200'],
     [('train_b32', 'CNN training, batch 32 (samples/s)', 'train_samples_per_s', 2, True),
      ('infer_b1000', 'CNN inference, batch 1000 (samples/s)', 'infer_samples_per_s', 2, True),
      ('latency_b1', 'CNN latency, batch 1 (ms)', 'latency_ms', None, False)]),
    ('cnn_b128', 'seed CNN, batch 128', ['cnn', '--batch', '128', '--epochs', '2'],
     [('train_b128', 'CNN training, batch 128 (samples/s)', 'train_samples_per_s', 2, True)]),
    # 20 epochs (25,000 steps) rather than the peer's 5, on both sides: a sub-second run is at the
    # mercy of one stray process on a shared machine.
    ('mlp', 'seed MLP, batch 16', ['mlp', '--epochs', '20'],
     [('mlp_steps', 'MLP training (steps/s)', 'steps_per_s', None, True)]),
]


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
    """Runs cmd; returns (output, seconds, peak RSS in MB, load average before)."""
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




def machine():
    cpu = 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
        flags = open('/proc/cpuinfo').read()
        isa = 'AVX-512' if 'avx512f' in flags else 'AVX2' if 'avx2' in flags else 'SSE'
    except OSError:
        isa = 'unknown'
    return {'cpu': cpu, 'isa': isa, 'cores': os.cpu_count(), 'kernel': platform.release(),
            'python': sys.version.split()[0]}


def fmt(values, higher):
    if not values:
        return 'n/a'
    med = statistics.median(values)
    digits = 2 if med < 10 else 0
    text = f'{med:,.{digits}f}'
    if len(values) > 1:
        text += f' [{min(values):,.{digits}f}–{max(values):,.{digits}f}]'
    return text


def svg_chart(rows, frameworks, path):
    """Grouped bars of each throughput metric, relative to the first peer framework (= 1)."""
    metrics = [r for r in rows if r['higher'] and r['medians'].get(frameworks[-1])]
    width, bar, gap, height = 760, 26, 30, 60 + len(metrics) * (len(frameworks) * 26 + 30)
    colors = ['#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd']
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="14">speed relative to {frameworks[-1]} (longer is faster)</text>']
    y = 40
    top = max((r['medians'].get(f) or 0) / r['medians'][frameworks[-1]] for r in metrics for f in frameworks) or 1
    for r in metrics:
        out.append(f'<text x="10" y="{y + 12}">{r["label"]}</text>')
        y += 16
        for k, f in enumerate(frameworks):
            v = r['medians'].get(f)
            if not v:
                continue
            rel = v / r['medians'][frameworks[-1]]
            w = int(rel / top * (width - 330))
            out.append(f'<rect x="230" y="{y}" width="{w}" height="{bar - 6}" fill="{colors[k % len(colors)]}"/>')
            out.append(f'<text x="{236 + w}" y="{y + 14}">{rel:.2f}× {f}</text>')
            y += bar
        y += gap - 16
    out.append('</svg>')
    with open(path, 'w') as fh:
        fh.write('\n'.join(out))


def png_chart(rows, frameworks, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics = [r for r in rows if r['higher'] and r['medians'].get(frameworks[-1])]
    fig, ax = plt.subplots(figsize=(9, 1 + 0.6 * len(metrics) * len(frameworks)))
    labels, values = [], []
    for r in metrics:
        for f in frameworks:
            if r['medians'].get(f):
                labels.append(f'{r["label"]} — {f}')
                values.append(r['medians'][f] / r['medians'][frameworks[-1]])
    ax.barh(range(len(values)), values)
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f'speed relative to {frameworks[-1]}')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--build', default=os.environ.get('LAMINA_BUILD', os.path.join(ROOT, 'build')))
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--samples', type=int, default=6000)
    p.add_argument('--out', help='where the results go (default: bench/ in the build folder)')
    p.add_argument('--max-load', type=float, default=0.0,
                   help='before each run, wait (up to 10 min) for the 1-minute load average to drop below this')
    p.add_argument('--reference-cnn', action='store_true',
                   help='also run the CNN workloads on the reference backend (slow: minutes per run)')
    p.add_argument('--python', default='/usr/bin/python3', help="the Python whose torch is the peer")
    a = p.parse_args()

    a.out = a.out or os.path.join(a.build, 'bench')
    bench = os.path.join(a.build, 'bin', 'lamina_bench')
    if not os.access(bench, os.X_OK):
        sys.exit(f'no {bench}: build it first (bench/run.sh does), or give --build')
    env = dict(os.environ)
    env.pop('OMP_NUM_THREADS', None)  # both sides use every core (2 threads here), their default
    torch_info = subprocess.run([a.python, '-c', 'import torch; print(torch.__version__)'], capture_output=True,
                                text=True)
    have_torch = torch_info.returncode == 0
    frameworks = ['lamina onednn', 'lamina reference']
    if have_torch:
        frameworks.append('PyTorch')
    else:
        print(f'warning: {a.python} cannot import torch; running lamina only', file=sys.stderr)

    def command(framework, args):
        extra = ['--samples', str(a.samples)] if args[0] == 'cnn' else []
        if framework.startswith('lamina'):
            return [bench] + args + extra + ['--backend', framework.split()[1]]
        return [a.python, os.path.join(HERE, 'torch_seed.py')] + args + extra

    raw = []  # one record per run
    info = {}
    for round_ in range(1, a.rounds + 1):
        for wid, wlabel, args, metrics in WORKLOADS:
            for framework in frameworks:
                if framework == 'lamina reference' and wid != 'mlp' and not a.reference_cnn:
                    continue
                cmd = command(framework, args)
                out, seconds, rss, load, rc = run(cmd, env, a.max_load, timeout=1800)
                per_epoch, plain = parse_output(out)
                if framework == 'PyTorch' and 'blas' in plain:
                    info['torch'] = f"{plain.get('torch', '?')}, {plain['blas']} BLAS, {plain.get('threads', '?')} threads"
                rec = {'round': round_, 'workload': wid, 'framework': framework, 'command': ' '.join(cmd),
                       'seconds': round(seconds, 2), 'peak_rss_mb': rss and round(rss, 1), 'load_before': load,
                       'returncode': rc, 'metrics': {}}
                for mid, _, key, epoch, _ in metrics:
                    src = per_epoch.get(epoch, {}) if epoch else plain
                    if key in src:
                        rec['metrics'][mid] = float(src[key])
                if 'run_peak_rss_mb' in plain:
                    rec['metrics']['run_rss'] = float(plain['run_peak_rss_mb'])
                last = per_epoch.get(max(per_epoch)) if per_epoch else {}
                if 'test_acc' in last:  # kept in the JSON: peers must train, not just run, alike
                    rec['test_accuracy'] = float(last['test_acc'])
                if rc != 0:
                    rec['error'] = out[-2000:]
                raw.append(rec)
                shown = ', '.join(f'{k} {v:,.1f}' for k, v in rec['metrics'].items()) or f'failed (exit {rc})'
                print(f'round {round_} {wid:8s} {framework:16s} {shown} | {seconds:.0f}s, '
                      f'process peak RSS {rss or 0:.0f} MB, load {load:.2f}', flush=True)

    rows = []
    for wid, wlabel, args, metrics in WORKLOADS:
        for mid, label, key, epoch, higher in metrics:
            values = {f: [r['metrics'][mid] for r in raw if r['framework'] == f and mid in r['metrics']]
                      for f in frameworks}
            rows.append({'id': mid, 'label': label, 'higher': higher, 'values': values,
                         'medians': {f: statistics.median(v) if v else None for f, v in values.items()}})
        mem = {f: [r['metrics']['run_rss'] for r in raw
                   if r['framework'] == f and r['workload'] == wid and 'run_rss' in r['metrics']]
               for f in frameworks}
        rows.append({'id': f'rss_{wid}', 'label': f'peak resident memory, {wlabel}, training + inference (MB)',
                     'higher': False, 'values': mem,
                     'medians': {f: statistics.median(v) if v else None for f, v in mem.items()}})

    loads = [r['load_before'] for r in raw]
    result = {'machine': machine(), 'torch': info.get('torch'), 'rounds': a.rounds, 'samples': a.samples,
              'load_average_before_runs': {'min': min(loads), 'median': statistics.median(loads), 'max': max(loads)},
              'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'rows': rows, 'runs': raw}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1)

    peer = 'PyTorch' if have_torch else None
    head = '| workload | ' + ' | '.join(frameworks) + (' | lamina onednn / PyTorch |' if peer else ' |')
    lines = [head, '|' + '---|' * (len(frameworks) + 1 + (1 if peer else 0))]
    for r in rows:
        cells = [fmt(r['values'][f], r['higher']) for f in frameworks]
        line = f'| {r["label"]} | ' + ' | '.join(cells)
        if peer:
            m, q = r['medians'].get('lamina onednn'), r['medians'].get(peer)
            ratio = (m / q if r['higher'] else q / m) if m and q else None
            line += f' | {ratio:.2f}×' if ratio else ' | '
        lines.append(line + ' |')
    m = result['machine']
    notes = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['isa']}, Linux {m['kernel']}. "
             f"PyTorch: {result['torch'] or 'not run'}. lamina: onednn backend, OpenMP threads = cores.",
             f"Medians [min–max] of {a.rounds} alternating rounds, {a.samples} training images, second epoch; "
             f"1-minute load average before the runs {result['load_average_before_runs']['min']:.2f}–"
             f"{result['load_average_before_runs']['max']:.2f} (the runs themselves add up to 2). "
             "Ratios are lamina over PyTorch for throughput, PyTorch over lamina for latency and memory "
             "(above 1: lamina better)."]
    md = '\n'.join(lines) + '\n\n' + '\n\n'.join(notes) + '\n'
    with open(os.path.join(a.out, 'results.md'), 'w') as f:
        f.write(md)
    chart_frameworks = [f for f in frameworks if f != 'lamina reference'] if peer else frameworks
    svg_chart(rows, chart_frameworks, os.path.join(a.out, 'results.svg'))
    png = png_chart(rows, chart_frameworks, os.path.join(a.out, 'results.png'))
    print('\n' + md)
    print(f'written: {a.out}/results.json, results.md, results.svg' + (', results.png' if png else
                                                                      ' (no PNG: matplotlib is not installed)'))


if __name__ == '__main__':
    main()
