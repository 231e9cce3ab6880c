/**
 * Word lists of `learned-writes.ts`: what, in a statement a replica refused, is not to be blamed.
 * Kept apart because they are data, long and meant to grow.
 */

/** Words: the string split on white space, as a set. */
function words(text: string): ReadonlySet<string> {
  return new Set(text.split(/\s+/).filter((w) => w !== ''));
}

/** Schemas of the system catalogs: their functions and views never explain a refusal we can fix. */
export const SYSTEM_SCHEMAS = words('pg_catalog information_schema');

/**
 * Keywords that may stand before `(` without calling a function: operators and clauses (`IN (…)`,
 * `EXISTS (…)`, `OVER (…)`, `FILTER (…)`), row and array constructors, and type names with a
 * modifier (`varchar(20)`, `numeric(10, 2)`), which are casts, not calls.
 */
export const NOT_CALLS = words(`
  all and any array as between by case cast cube distinct else end except exists filter from group
  grouping having in intersect is join lateral like ilike not on or order over partition returning
  rollup row rows select sets similar some table then union using values when where window with within
  bit char character decimal dec float interval numeric time timestamp varchar varbit nchar national
  varying double precision current_timestamp current_time localtime localtimestamp limit offset
  materialized bernoulli system repeatable to only first next
`);

/** Keywords that may follow `FROM`, `JOIN` or `,` in a FROM list without naming a relation. */
export const NOT_RELATIONS = words('select values with lateral only rows table unnest generate_series');

/** Keywords that end a FROM list at the same parenthesis depth. */
export const FROM_ENDS = words(`
  where group having window order limit offset fetch for union intersect except returning into on using
`);

/**
 * Built-in functions of PostgreSQL (and its most common extensions) that read only: a statement
 * calling them and refused by a replica writes through something else. Not a complete list of the
 * catalog, the ones applications call most; a built-in missing here may be learned, which only
 * costs its reads a trip to the primary.
 */
export const BUILTIN_FUNCTIONS = words(`
  count sum avg min max array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg
  bool_and bool_or every bit_and bit_or stddev stddev_pop stddev_samp variance var_pop var_samp
  corr covar_pop covar_samp regr_slope percentile_cont percentile_disc mode xmlagg range_agg
  row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
  coalesce nullif greatest least num_nulls num_nonnulls
  lower upper initcap length char_length character_length octet_length bit_length substr substring
  trim btrim ltrim rtrim replace concat concat_ws format left right lpad rpad position strpos
  split_part reverse repeat translate overlay ascii chr md5 sha224 sha256 sha384 sha512 encode decode
  regexp_replace regexp_match regexp_matches regexp_split_to_array regexp_split_to_table regexp_like
  regexp_count regexp_instr regexp_substr starts_with string_to_array array_to_string
  string_to_table quote_ident quote_literal quote_nullable to_hex unistr normalize
  to_char to_number to_date to_timestamp
  abs ceil ceiling floor round trunc mod power pow sqrt cbrt exp ln log log10 sign div
  width_bucket pi degrees radians sin cos tan asin acos atan atan2 gcd lcm factorial random
  scale trim_scale
  now clock_timestamp statement_timestamp transaction_timestamp timeofday date_trunc date_part
  date_bin extract age make_date make_time make_timestamp make_timestamptz make_interval
  justify_days justify_hours justify_interval isfinite timezone
  to_json to_jsonb row_to_json array_to_json json_build_object jsonb_build_object json_build_array
  jsonb_build_array json_object jsonb_object json_array_length jsonb_array_length json_each
  jsonb_each json_each_text jsonb_each_text json_array_elements jsonb_array_elements
  json_array_elements_text jsonb_array_elements_text json_object_keys jsonb_object_keys
  json_extract_path jsonb_extract_path json_extract_path_text jsonb_extract_path_text json_typeof
  jsonb_typeof jsonb_set jsonb_set_lax jsonb_insert jsonb_strip_nulls json_strip_nulls jsonb_pretty
  jsonb_path_query jsonb_path_query_array jsonb_path_query_first jsonb_path_exists jsonb_path_match
  json_populate_record jsonb_populate_record json_to_record jsonb_to_record json_to_recordset
  jsonb_to_recordset json_scalar json_serialize
  unnest array_length array_lower array_upper array_ndims array_dims array_append array_prepend
  array_cat array_position array_positions array_remove array_replace array_fill cardinality
  generate_series generate_subscripts
  to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank ts_rank_cd
  ts_headline setweight strip tsvector_to_array array_to_tsvector numnode querytree
  similarity word_similarity levenshtein soundex difference metaphone dmetaphone unaccent
  gen_random_uuid uuid_generate_v4 uuid_generate_v1 md5 digest hmac crypt gen_salt
  version current_setting current_database current_schema current_schemas current_user session_user
  has_table_privilege has_schema_privilege has_column_privilege has_function_privilege
  has_database_privilege obj_description col_description format_type to_regclass to_regtype
  to_regproc host hostmask masklen netmask network family inet_merge
  st_distance st_dwithin st_contains st_intersects st_within st_makepoint st_setsrid st_astext
  st_asgeojson st_geomfromtext st_transform st_x st_y st_area st_length st_buffer
  int int2 int4 int8 integer smallint bigint float4 float8 real text bool boolean date uuid json jsonb
  bytea inet cidr point box polygon circle line lseg path money tsvector tsquery xml regclass oid name
  daterange tsrange tstzrange int4range int8range numrange int4multirange
  isempty lower_inc upper_inc lower_inf upper_inf range_merge multirange
  xmlelement xmlattributes xmlforest xmlconcat xmlparse xmlserialize xpath xpath_exists
  xmltable json_table json_query json_value json_exists json_array json_objectagg json_arrayagg
`);
