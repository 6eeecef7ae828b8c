"""The light-curve API: IRSA's ZTF light-curve service's parameters and columns
(``/lightcurves/query``, and ``/cgi-bin/ZTF/nph_light_curves`` as IRSA names it)."""
