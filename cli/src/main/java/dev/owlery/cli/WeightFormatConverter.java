package dev.owlery.cli;

import dev.owlery.engine.tensor.WeightFormat;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Parses {@code --weights}: mapped, stored, f16, bf16, q8_0 or q4_0, any case; anything else names the choices. */
public final class WeightFormatConverter implements ITypeConverter<WeightFormat> {

  @Override
  public WeightFormat convert(String value) {
    try {
      return WeightFormat.parse(value);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException(e.getMessage());
    }
  }
}
