// `lamina predict MODEL.h5 --input SPEC --output OUT.h5`: the model's outputs as dataset
// `predictions` (N x outputs, float32), computed and written a chunk at a time.
#include "commands.hpp"
#include "data.hpp"

#include <lamina/lamina.hpp>

#include <iostream>

namespace lamina::cli {

void add_predict(CLI::App& app, ModelArgs& a) {
  auto* c =
      app.add_subcommand("predict", "Run a Keras .h5 model on inputs; write the outputs to an HDF5 file");
  c->add_option("model", a.model, "The model file (.h5, written by Keras or lamina)")->required();
  c->add_option("--input", a.data, "mnist:DIR, fashion_mnist[:DIR] or h5:FILE:X")->required();
  c->add_option("--output", a.output, "Where the outputs go: an HDF5 file with dataset 'predictions'")
      ->required();
  add_model_options(*c, a);
}

int run_predict(const ModelArgs& a) {
  Model model = open_model(a, false);
  DataSource data(a.data, a.scale);
  int64_t n = rows_to_use(data, a);
  Shape shape{n};
  shape.insert(shape.end(), model.output_shape().begin(), model.output_shape().end());
  h5::AtomicWrite writer(a.output);
  h5::File& out = writer.file();
  out.create_dataset("predictions", h5::DType::float32, shape);
  for (int64_t b = 0; b < n; b += kChunkRows) {
    int64_t e = std::min(n, b + kChunkRows);
    Tensor p = model.predict(data.inputs(b, e, model.input_shape()), a.batch_size);
    out.write_rows("predictions", b, p.host_data(), e - b);
  }
  out.set_attribute("predictions", "model", a.model);
  out.set_attribute("predictions", "input", a.data);
  writer.commit();
  std::cout << "Wrote predictions of shape " << shape_to_string(shape) << " to " << a.output << "\n";
  return 0;
}

}  // namespace lamina::cli
