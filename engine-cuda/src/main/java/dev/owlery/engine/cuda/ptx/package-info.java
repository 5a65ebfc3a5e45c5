/**
 * The compiled kernels: {@link dev.owlery.engine.cuda.ptx.PtxModule} loads each checked-in PTX file,
 * {@link dev.owlery.engine.cuda.ptx.PtxKernels} lists their entry points and parameters, and
 * {@link dev.owlery.engine.cuda.ptx.PtxAssembler} assembles PTX for a GPU without one (nvPTXCompiler)
 * to report registers and spills. The CUDA C is in {@code engine-cuda/src/main/cuda}; regenerate the
 * PTX with {@code scripts/build-ptx.sh}.
 */
package dev.owlery.engine.cuda.ptx;
