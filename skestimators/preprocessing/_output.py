"""``set_output`` for transformers whose output has more than two axes for
some inputs (spectra, images, patches)."""

from __future__ import annotations

__all__ = ["ArrayOutputMixin"]


class ArrayOutputMixin:
    """``set_output`` offered whatever the output's shape.

    scikit-learn offers ``set_output`` only while ``get_feature_names_out``
    exists, which these transformers define for 2-D outputs only: once
    fitted on 3-D spectra, ``Pipeline.set_output(transform="pandas")``
    failed ("set_output is not available"), and a Pipeline holding an
    :class:`ImagePreprocessor` could never set it.
    """

    def set_output(self, *, transform=None):
        """Set the output container of ``transform`` and ``fit_transform``.

        A 2-D output follows scikit-learn's ``set_output``. An output of
        three or more axes stays an array whatever the setting (a DataFrame
        has two), so the setting is then accepted and changes nothing.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"}, default=None
            Configure the output of ``transform`` and ``fit_transform``;
            None leaves it unchanged.

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        if hasattr(self, "get_feature_names_out"):
            return super().set_output(transform=transform)
        if transform not in (None, "default", "pandas", "polars"):
            raise ValueError(
                'transform must be None, "default", "pandas" or "polars", got '
                f"{transform!r}."
            )
        return self
