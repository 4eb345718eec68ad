// Device memory of the opencl backend: every tensor is a cl_mem of its own (or a view into one),
// and the core moves data between host and device only through copy_in and copy_out. Both copies
// are blocking: the core's host memory may be gone once they return, and copy_out's caller reads
// the values at once. Being on the in-order queue, they also wait for the kernels before them.
#include <string>

#include "kernels.hpp"

namespace lamina::opencl {
namespace {

std::string mib(size_t bytes) {
  return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}

void* alloc(void* self, size_t bytes, lamina_error* error) {
  Backend& b = *static_cast<Backend*>(self);
  // Devices refuse single buffers above this size, some only at first use, so it is checked here
  // where the message can say why.
  if (bytes > b.max_alloc) {
    sdk::write_error(error,
                     "opencl: a tensor of " + std::to_string(bytes) + " bytes (" + mib(bytes) +
                         ") exceeds the largest buffer the device allows, CL_DEVICE_MAX_MEM_ALLOC_SIZE = " +
                         mib(b.max_alloc) + " on " + b.device_name);
    return nullptr;
  }
  cl_int status = CL_SUCCESS;
  cl_mem buffer =
      clCreateBuffer(b.context, CL_MEM_READ_WRITE, bytes == 0 ? sizeof(float) : bytes, nullptr, &status);
  if (status != CL_SUCCESS || !buffer) {
    sdk::write_error(error, "opencl: allocating " + std::to_string(bytes) + " bytes (" + mib(bytes) +
                                ") of device memory failed: " + cl_error_name(status));
    return nullptr;
  }
  return buffer;
}

// The device frees the memory once the work still queued on it has finished.
void release(void* /*self*/, void* buffer) {
  if (buffer) clReleaseMemObject(static_cast<cl_mem>(buffer));
}

lamina_status copy_in(void* self, void* buffer, size_t offset, const void* source, size_t bytes,
                      lamina_error* error) {
  if (bytes == 0) return LAMINA_OK;
  if (!buffer || !source) {
    sdk::write_error(error, "opencl: copy_in with a null buffer or source");
    return LAMINA_ERROR;
  }
  Backend& b = *static_cast<Backend*>(self);
  cl_int status = clEnqueueWriteBuffer(b.queue, static_cast<cl_mem>(buffer), CL_TRUE, offset, bytes, source,
                                       0, nullptr, nullptr);
  if (status != CL_SUCCESS) {
    sdk::write_error(error, "opencl: copying " + std::to_string(bytes) + " bytes to the device at offset " +
                                std::to_string(offset) + " failed: " + cl_error_name(status));
    return LAMINA_ERROR;
  }
  return LAMINA_OK;
}

lamina_status copy_out(void* self, const void* buffer, size_t offset, void* destination, size_t bytes,
                       lamina_error* error) {
  if (bytes == 0) return LAMINA_OK;
  if (!buffer || !destination) {
    sdk::write_error(error, "opencl: copy_out with a null buffer or destination");
    return LAMINA_ERROR;
  }
  Backend& b = *static_cast<Backend*>(self);
  cl_int status = clEnqueueReadBuffer(b.queue, static_cast<cl_mem>(const_cast<void*>(buffer)), CL_TRUE,
                                      offset, bytes, destination, 0, nullptr, nullptr);
  if (status != CL_SUCCESS) {
    // A kernel that failed while running reports here, at the first wait after it.
    sdk::write_error(error, "opencl: copying " + std::to_string(bytes) + " bytes from the device at offset " +
                                std::to_string(offset) + " failed: " + cl_error_name(status));
    return LAMINA_ERROR;
  }
  return LAMINA_OK;
}

lamina_status synchronize(void* self, lamina_error* error) {
  cl_int status = clFinish(static_cast<Backend*>(self)->queue);
  if (status != CL_SUCCESS) {
    sdk::write_error(error, "opencl: waiting for the device failed: " + cl_error_name(status));
    return LAMINA_ERROR;
  }
  return LAMINA_OK;
}

}  // namespace

lamina_backend memory_table(Backend& backend) {
  return sdk::backend_table(&backend, false, alloc, release, copy_in, copy_out, synchronize);
}

}  // namespace lamina::opencl
