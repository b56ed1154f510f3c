"""``datetime_format`` as Spark's datetime pattern (data/spark_dates.py): plain Python, run
without Spark; tests/test_data_spark.py reads the same formats on a real Spark against DuckDB."""
import pytest

from clvtools.data.spark_dates import spark_datetime_pattern
from clvtools.errors import ClvInputError


@pytest.mark.parametrize("datetime_format, pattern", [
    ("%Y%m%d", "yyyyMMdd"),                          # numbers that touch: fixed widths
    ("%d.%m.%Y", "d'.'M'.'y"),                       # separated: any width
    ("%H:%M %% o'clock", "H':'m' % o''clock'"),      # a literal % and a quote
    ("%d%b%Y %I%p", "dMMMy' 'ha"),                   # text ends a number by itself
    ("%-d/%-m/%Y", "d'/'M'/'y"),                     # DuckDB's unpadded codes
    ("%Y-%m-%dT%H:%M%z", "y'-'M'-'d'T'H':'m[xxx][x]"),  # +05:00, +0500 or +05; not Z
])
def test_strptime_codes_become_the_spark_letters_of_the_same_field(datetime_format, pattern):
    assert spark_datetime_pattern(datetime_format) == pattern


@pytest.mark.parametrize("datetime_format, named", [("%d/%m/%y", "%y"), ("%-y", "%-y"),
                                                      ("%A %d", "%A")])
def test_a_code_spark_cannot_read_is_named(datetime_format, named):
    with pytest.raises(ClvInputError, match=f"holds {named}, which the Spark engine cannot"):
        spark_datetime_pattern(datetime_format)


def test_a_lone_percent_is_an_error():
    with pytest.raises(ClvInputError, match="ends with a lone %"):
        spark_datetime_pattern("%Y%")
