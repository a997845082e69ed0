/* runtime.cu — the CUDA runtime calls the backend needs, behind plain C functions
 * (cuda-kernels.h), so cuda.c is ordinary C built by the project's compiler.
 *
 * The engine links the static CUDA runtime, which loads the driver (libcuda.so.1) on first
 * use: without an NVIDIA driver every call returns cudaErrorInsufficientDriver (or
 * cudaErrorNoDevice without a GPU), which wh_cu_error_is_no_device() recognises.
 */
#include <cuda_runtime.h>
#include <string.h>

#include "cuda-kernels.h"

extern "C" const char *
wh_cu_error_name(int err)
{
  return cudaGetErrorName((cudaError_t)err);
}

extern "C" const char *
wh_cu_error_string(int err)
{
  return cudaGetErrorString((cudaError_t)err);
}

extern "C" int
wh_cu_error_is_no_device(int err)
{
  switch ((cudaError_t)err) {
  case cudaErrorNoDevice:
  case cudaErrorInsufficientDriver:
  case cudaErrorSystemDriverMismatch:
  case cudaErrorCompatNotSupportedOnDevice:
  case cudaErrorInitializationError:
  case cudaErrorStubLibrary:
  case cudaErrorDevicesUnavailable:
    return 1;
  default:
    return 0;
  }
}

extern "C" int
wh_cu_device_count(int *n)
{
  *n = 0;
  const cudaError_t e = cudaGetDeviceCount(n);
  if (e != cudaSuccess)
    *n = 0;
  return (int)e;
}

extern "C" int
wh_cu_device_props(int dev, char *name, size_t name_len, size_t *total_mem, int *cc_major,
                   int *cc_minor, int *n_multiprocessors)
{
  cudaDeviceProp prop;
  const cudaError_t e = cudaGetDeviceProperties(&prop, dev);
  if (e != cudaSuccess)
    return (int)e;
  if (name_len > 0) {
    strncpy(name, prop.name, name_len - 1);
    name[name_len - 1] = '\0';
  }
  *total_mem = prop.totalGlobalMem;
  *cc_major = prop.major;
  *cc_minor = prop.minor;
  *n_multiprocessors = prop.multiProcessorCount;
  return 0;
}

extern "C" int
wh_cu_set_device(int dev)
{
  return (int)cudaSetDevice(dev);
}

extern "C" int
wh_cu_mem_info(size_t *free_bytes, size_t *total_bytes)
{
  return (int)cudaMemGetInfo(free_bytes, total_bytes);
}

extern "C" int
wh_cu_malloc(void **ptr, size_t bytes)
{
  *ptr = nullptr;
  return bytes ? (int)cudaMalloc(ptr, bytes) : 0;
}

extern "C" int
wh_cu_free(void *ptr)
{
  return ptr ? (int)cudaFree(ptr) : 0;
}

extern "C" int
wh_cu_host_alloc(void **ptr, size_t bytes)
{
  *ptr = nullptr;
  return bytes ? (int)cudaMallocHost(ptr, bytes) : 0;
}

extern "C" int
wh_cu_host_free(void *ptr)
{
  return ptr ? (int)cudaFreeHost(ptr) : 0;
}

extern "C" int
wh_cu_stream_new(wh_cu_stream **stream)
{
  cudaStream_t s = nullptr;
  const cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  *stream = (wh_cu_stream *)s;
  return (int)e;
}

extern "C" int
wh_cu_stream_free(wh_cu_stream *stream)
{
  return stream ? (int)cudaStreamDestroy((cudaStream_t)stream) : 0;
}

extern "C" int
wh_cu_stream_sync(wh_cu_stream *stream)
{
  return (int)cudaStreamSynchronize((cudaStream_t)stream);
}

extern "C" int
wh_cu_upload(void *dst_dev, const void *src_host, size_t bytes, wh_cu_stream *stream)
{
  return bytes ? (int)cudaMemcpyAsync(dst_dev, src_host, bytes, cudaMemcpyHostToDevice,
                                      (cudaStream_t)stream)
               : 0;
}

extern "C" int
wh_cu_download(void *dst_host, const void *src_dev, size_t bytes, wh_cu_stream *stream)
{
  return bytes ? (int)cudaMemcpyAsync(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost,
                                      (cudaStream_t)stream)
               : 0;
}

extern "C" int
wh_cu_copy_device(void *dst_dev, const void *src_dev, size_t bytes, wh_cu_stream *stream)
{
  return bytes ? (int)cudaMemcpyAsync(dst_dev, src_dev, bytes, cudaMemcpyDeviceToDevice,
                                      (cudaStream_t)stream)
               : 0;
}
