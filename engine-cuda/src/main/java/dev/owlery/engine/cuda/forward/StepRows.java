package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.cuda.runtime.DevicePointer;
import dev.owlery.engine.decoder.Modality;

/**
 * What a layer needs to know of a step on the host: how many rows, each row's modality (to pick
 * MAM's k/v weights per run of rows), and where the step's int32 block tables
 * {@code [numSeqs, maxBlocksPerSeq]} lie on the device.
 */
record StepRows(int numTokens, Modality[] modalities, DevicePointer blockTables, int maxBlocksPerSeq) {

  Modality modality(int t) {
    return modalities[t];
  }

  /** End (exclusive) of the run of rows from {@code start} that share one weight copy (as {@code Multiway.runEnd}). */
  int modalityRunEnd(int start, int numModalities) {
    if (numModalities == 1) {
      return numTokens;
    }
    int i = start + 1;
    while (i < numTokens && modalities[i] == modalities[start]) {
      i++;
    }
    return i;
  }
}
