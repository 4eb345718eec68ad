#!/usr/bin/env python3
"""Model files between real Keras and lamina, both ways.

For each Keras flavour found (Keras 3 as `keras`, Keras 2 as `tf_keras`):
  Keras -> lamina: Keras builds, trains (one epoch, compiled with an optimizer) and saves an MLP, a
                   CNN and a functional residual network (BatchNormalization, Add, Concatenate) as .h5; `lamina predict` and `lamina evaluate` must match Keras' predict and
                   evaluate.
  lamina -> Keras: `lamina train` writes an MLP, a CNN and examples/residual_cnn.json (a functional
                   residual network with BatchNormalization) as .h5, with the optimizer state in
                   tf_keras' order and, a second file, in Keras 3's (--optimizer-layout keras3); Keras'
                   load_model must read its file, compiled, with every optimizer variable equal to
                   lamina's; its predict must match `lamina predict`, and it must train on.
Every comparison is on 512 real MNIST test images; outputs must agree within 1e-5.

usage: keras_interop.py --lamina build/bin/lamina [--mnist tests/data/mnist] [--work DIR]
Needs numpy, h5py and Keras (see tests/interop/run.sh, which makes a virtual environment).
"""
import argparse, gzip, json, os, subprocess, sys, tempfile, warnings, logging

import numpy as np
import h5py

TOLERANCE = 1e-5
N_TRAIN, N_CHECK = 2000, 512
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(int(d).to_bytes(4, 'big') for d in array.shape)
    with open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def lamina_predict(lamina, model, inputs, name, out):
    run([lamina, 'predict', model, '--input', f'h5:{inputs}:{name}', '--output', out])
    with h5py.File(out, 'r') as f:
        return np.array(f['predictions'])


def lamina_evaluate(lamina, model, inputs, x, y):
    text = run([lamina, 'evaluate', model, '--data', f'h5:{inputs}:{x}:{y}'])
    values = {}
    for line in text.splitlines():
        if ':' in line and line.split(':')[0] in ('loss', 'accuracy'):
            values[line.split(':')[0]] = float(line.split(':')[1])
    return values


def flavours():
    found = []
    try:
        import keras
        found.append(('keras', keras, keras.__version__))
    except ImportError:
        pass
    try:
        import tf_keras
        found.append(('tf_keras', tf_keras, tf_keras.__version__))
    except ImportError:
        pass
    return found


def keras_models(K):
    L = K.layers
    mlp = K.Sequential([L.InputLayer(input_shape=(784,)) if K.__name__ == 'tf_keras' else L.Input(shape=(784,)),
                        L.Dense(64, activation='relu'), L.Dropout(0.2), L.Dense(10, activation='softmax')])
    mlp.compile(optimizer=K.optimizers.Adam(), loss='categorical_crossentropy', metrics=['accuracy'])
    cnn = K.Sequential([L.InputLayer(input_shape=(28, 28, 1)) if K.__name__ == 'tf_keras' else L.Input(shape=(28, 28, 1)),
                        L.Conv2D(8, (3, 3), activation='relu'), L.MaxPooling2D((2, 2)),
                        L.Conv2D(16, (3, 3), padding='same', activation='relu'), L.MaxPooling2D((2, 2)),
                        L.Flatten(), L.Dense(32, activation='relu'), L.Dense(10, activation='softmax')])
    cnn.compile(optimizer=K.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss='categorical_crossentropy',
                metrics=['accuracy'])
    # A graph: a residual block with BatchNormalization, two poolings joined by Concatenate.
    inputs = K.Input(shape=(28, 28, 1), name='image')
    x = L.Conv2D(8, (3, 3), padding='same', activation='relu')(inputs)
    y = L.BatchNormalization()(L.Conv2D(8, (3, 3), padding='same')(x))
    x = L.MaxPooling2D((2, 2))(L.Activation('relu')(L.Add()([x, y])))
    x = L.Concatenate()([L.GlobalAveragePooling2D()(x), L.GlobalMaxPooling2D()(x)])
    res = K.Model(inputs, L.Dense(10, activation='softmax')(x))
    res.compile(optimizer=K.optimizers.Adam(), loss='categorical_crossentropy', metrics=['accuracy'])
    return {'mlp': (mlp, (784,)), 'cnn': (cnn, (28, 28, 1)), 'res': (res, (28, 28, 1))}


def lamina_configs(work):
    mlp_model = {"class_name": "Sequential", "config": {"name": "lamina_mlp", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 784], "name": "pixels"}},
        {"class_name": "Dense", "config": {"units": 64, "activation": "relu"}},
        {"class_name": "Dropout", "config": {"rate": 0.2}},
        {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}}
    with open(os.path.join(ROOT, 'examples', 'mnist_cnn.json')) as f:
        cnn_model = json.load(f)['model']
    with open(os.path.join(ROOT, 'examples', 'residual_cnn.json')) as f:
        res_model = json.load(f)['model']
    data = {"dataset": "idx", "path": work}
    fit = {"epochs": 1, "batch_size": 32, "validation": "none", "verbose": 0}
    configs = {
        'mlp': {"model": mlp_model, "compile": {"loss": "categorical_crossentropy", "optimizer": "adam",
                                                "metrics": ["accuracy"]}, "fit": fit, "data": data},
        'cnn': {"model": cnn_model, "compile": {"loss": "categorical_crossentropy", "optimizer": "adadelta",
                                                "metrics": ["accuracy"]}, "fit": fit, "data": data},
        'res': {"model": res_model, "compile": {"loss": "categorical_crossentropy", "optimizer": "adam",
                                                "metrics": ["accuracy"]}, "fit": fit, "data": data},
    }
    shapes = {'mlp': (784,), 'cnn': (28, 28, 1), 'res': (28, 28, 1)}
    return configs, shapes


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--lamina', required=True)
    p.add_argument('--mnist', default=os.path.join(ROOT, 'tests', 'data', 'mnist'))
    p.add_argument('--work', default=None)
    a = p.parse_args()
    work = a.work or tempfile.mkdtemp(prefix='lamina_interop_')
    os.makedirs(work, exist_ok=True)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    logging.getLogger('absl').setLevel(logging.ERROR)

    images = idx(os.path.join(a.mnist, 't10k-images-idx3-ubyte.gz'))
    labels = idx(os.path.join(a.mnist, 't10k-labels-idx1-ubyte.gz'))
    x_train, y_train = images[:N_TRAIN].astype(np.float32) / 255.0, labels[:N_TRAIN]
    x_check, y_check = images[-N_CHECK:].astype(np.float32) / 255.0, labels[-N_CHECK:]
    onehot = lambda y: np.eye(10, dtype=np.float32)[y]
    inputs = os.path.join(work, 'inputs.h5')
    with h5py.File(inputs, 'w') as f:
        f['x'] = x_check.reshape(-1, 784)
        f['y'] = onehot(y_check)
    # lamina train reads IDX folders: the first 2,000 test images serve as its training split here.
    write_idx(os.path.join(work, 'train-images-idx3-ubyte'), images[:N_TRAIN])
    write_idx(os.path.join(work, 'train-labels-idx1-ubyte'), labels[:N_TRAIN])
    write_idx(os.path.join(work, 't10k-images-idx3-ubyte'), images[-N_CHECK:])
    write_idx(os.path.join(work, 't10k-labels-idx1-ubyte'), labels[-N_CHECK:])

    results, failures = [], 0

    def record(direction, flavour, model, what, value, ok):
        nonlocal failures
        failures += 0 if ok else 1
        results.append((direction, flavour, model, what, value, 'ok' if ok else 'FAIL'))

    # lamina -> file, once; every flavour reads the same files.
    configs, shapes = lamina_configs(work)
    lamina_files = {'tf_keras': {}, 'keras': {}}  # per flavour: the optimizer state in its order
    for name, cfg in configs.items():
        cfg_path = os.path.join(work, f'lamina_{name}.json')
        with open(cfg_path, 'w') as f:
            json.dump(cfg, f)
        for flavour, layout in (('tf_keras', 'tf_keras'), ('keras', 'keras3')):
            out = os.path.join(work, f'lamina_{name}_{layout}.h5')
            run([a.lamina, 'train', cfg_path, '--seed', '7', '--output', out, '--optimizer-layout', layout])
            lamina_files[flavour][name] = out
        # The configs' JSON is Python's own (compact) text: numbers as repr writes them (0.9, 1e-07,
        # 0.0), not 9E-1 or 0E0.
        with h5py.File(lamina_files['tf_keras'][name], 'r') as f:
            texts = [f.attrs[k] for k in ('model_config', 'training_config')]
        texts = [t.decode() if isinstance(t, bytes) else t for t in texts]
        ok = all(json.dumps(json.loads(t), separators=(',', ':'), ensure_ascii=False) == t for t in texts)
        record('lamina -> file', 'python json', name, 'configs written as Python writes JSON',
               'same text' if ok else 'differs', ok)

    for flavour, K, version in flavours():
        label = f'{flavour} {version}'
        # Keras -> lamina
        for name, (model, shape) in keras_models(K).items():
            x = x_train.reshape((-1,) + shape)
            model.fit(x, onehot(y_train), epochs=1, batch_size=64, verbose=0)
            path = os.path.join(work, f'{flavour}_{name}.h5')
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                model.save(path)
            expected = model.predict(x_check.reshape((-1,) + shape), verbose=0)
            got = lamina_predict(a.lamina, path, inputs, 'x', os.path.join(work, f'pred_{flavour}_{name}.h5'))
            d = float(np.abs(got - expected).max())
            record('Keras -> lamina', label, name, 'predict max |diff|', f'{d:.2e}', d < TOLERANCE)
            k_loss, k_acc = model.evaluate(x_check.reshape((-1,) + shape), onehot(y_check), verbose=0)
            ev = lamina_evaluate(a.lamina, path, inputs, 'x', 'y')
            ok = abs(ev.get('accuracy', -1) - k_acc) <= 1e-4 and abs(ev.get('loss', -1) - k_loss) <= 1e-4 + 1e-4 * k_loss
            record('Keras -> lamina', label, name, 'evaluate loss/accuracy',
                   f'{ev.get("loss")}/{ev.get("accuracy")} vs {k_loss:.4f}/{k_acc:.4f}', ok)
            steps = int(model.optimizer.iterations.numpy())
            summary = run([a.lamina, 'summary', path])
            ok = f'at step {steps}' in summary and 'not restored' not in summary
            record('Keras -> lamina', label, name, 'optimizer state restored', f'step {steps}', ok)
        # lamina -> Keras
        for name, path in lamina_files[flavour].items():
            shape = shapes[name]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                model = K.models.load_model(path)
            expected = lamina_predict(a.lamina, path, inputs, 'x', os.path.join(work, f'pred_lamina_{name}.h5'))
            got = model.predict(x_check.reshape((-1,) + shape), verbose=0)
            d = float(np.abs(got - expected).max())
            record('lamina -> Keras', label, name, 'predict max |diff|', f'{d:.2e}', d < TOLERANCE)
            with h5py.File(path, 'r') as f:
                names = [n.decode() if isinstance(n, bytes) else n for n in f['optimizer_weights'].attrs['weight_names']]
                stored = [np.array(f['optimizer_weights'][n]) for n in names]
            steps = int(model.optimizer.iterations.numpy())
            # Both Kerases restore optimizer state by position: all of it must land where it belongs,
            # the step counter, Keras 3's learning rate and every slot.
            restored = None
            if flavour == 'keras':
                # Keras 3's .h5 loader builds its optimizer over model._trainable_variables, which is
                # empty for a loaded model (its own files too): it keeps the counter and the learning
                # rate, and the optimizer cannot train the model. What the loader means to do is done
                # here: the same optimizer built over the model's trainable variables, the file's
                # list put back with set_weights (which checks every shape).
                kept = [np.array(v) for v in model.optimizer.variables]
                restored = type(model.optimizer).from_config(model.optimizer.get_config())
                restored.build(model.trainable_variables)
                restored.set_weights(stored)
                values = [np.array(v) for v in restored.variables]
                ok = all(np.array_equal(v, s) for v, s in zip(kept, stored))
            else:
                values, ok = model.optimizer.get_weights(), True
            ok = ok and len(values) == len(stored) and all(np.array_equal(v, s) for v, s in zip(values, stored))
            ok = ok and steps == int(stored[0])
            record('lamina -> Keras', label, name, 'optimizer state restored', f'step {steps}, {len(values)} arrays', ok)
            compiled = getattr(model, 'optimizer', None) is not None and getattr(model, 'loss', None) is not None
            record('lamina -> Keras', label, name, 'compiled from training_config',
                   type(model.optimizer).__name__ if compiled else 'no', compiled)
            notes = '; '.join(str(w.message).split('\n')[0][:80] for w in caught
                              if 'optimizer' in str(w.message).lower())
            xs, ys = x_train[:256].reshape((-1,) + shape), onehot(y_train[:256])
            try:
                loss = model.fit(xs, ys, epochs=1, batch_size=64, verbose=0).history['loss'][-1]
            except ValueError as e:
                # Keras 3's legacy .h5 loader builds an optimizer that rejects the model's variables
                # ("Unknown variable"), for Keras' own files too; compiling again with the optimizer
                # rebuilt above, which holds the file's state, trains on from it.
                if 'Unknown variable' not in str(e) or restored is None:
                    raise
                notes = (notes + '; ' if notes else '') + 'recompiled with the restored optimizer (Keras 3 cannot train its own .h5 files as loaded)'
                model.compile(optimizer=restored, loss=model.loss, metrics=['accuracy'])
                loss = model.fit(xs, ys, epochs=1, batch_size=64, verbose=0).history['loss'][-1]
                ok = int(restored.iterations.numpy()) == steps + 4
                record('lamina -> Keras', label, name, 'trains on from the restored state', f'step {int(restored.iterations.numpy())}', ok)
            record('lamina -> Keras', label, name, 'trains on (loss after 4 steps)',
                   f'{loss:.4f}' + (f' [{notes}]' if notes else ''), bool(np.isfinite(loss)))

    width = max(len(r[1]) for r in results) if results else 10
    for r in results:
        print(f'{r[0]:16} {r[1]:{width}} {r[2]:4} {r[3]:32} {r[5]:4} {r[4]}')
    if not flavours():
        print('no Keras installed: pip install keras tensorflow-cpu (and tf_keras for Keras 2)')
        return 2
    print('interop holds' if failures == 0 else f'{failures} interop checks FAILED')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
