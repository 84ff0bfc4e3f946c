/* Symbol export and status codes of the C ABI (the libraries are built with hidden visibility). */
#ifndef DPANET_API_H
#define DPANET_API_H

#if defined(__GNUC__)
#define DPANET_API __attribute__((visibility("default")))
#else
#define DPANET_API
#endif

/* Return codes: 0 is success. */
#define DPANET_INVALID_ARGUMENT 1 /* bad shapes, attributes or pointers */
#define DPANET_CUDA_ERROR 2       /* a CUDA launch or cuBLAS call failed */
#define DPANET_OUT_OF_MEMORY 3    /* a CPU kernel could not allocate its workspace */

#endif /* DPANET_API_H */
