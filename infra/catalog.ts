/**
 * The optional Glue catalog and Athena workgroup of a `SluicePipeline` (`catalog: true` or
 * `catalog: { tables: [...] }`): one Glue database, one table per saved output named in `tables`,
 * and a workgroup whose query results go to `athena-results/` in the pipeline's bucket.
 *
 * Each table uses partition projection matching the output layout of shared/core/layout.ts,
 * `outputs/<name>/dt=YYYY-MM-DD/hr=HH/batch=<t>/part-NNNNN.<ext>`: `dt` is a projected date
 * (string column, `yyyy-MM-dd`, from `projectionStart` to NOW) and `hr` a projected integer
 * (0-23, two digits). Nothing has to be added or crawled: `SELECT ... WHERE dt = '...'` works
 * right after deploy. The batch folder under an hour is not a partition column (a projected
 * epoch-millisecond integer has no useful range, and `injected` would force every query to name
 * a batch); Athena reads the files of a partition's sub-folders, and `"$path"` names the batch.
 * Files whose names start with `_` (the `_SUCCESS` markers) are hidden from Athena.
 *
 * @module
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as glue from 'aws-cdk-lib/aws-glue';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { athenaType, PARQUET_TYPES, type ParquetType } from '../shared/core/parquet.ts';

/** A Glue table over one saved output. */
export interface SluiceCatalogTable {
  /** The output's name: what the pipeline gives `saveAsParquet` or `saveAsJsonLines`. */
  readonly output: string;
  /**
   * Columns and their types (the same names as `saveAsParquet`'s `schema`). Declare the same
   * schema in the pipeline so every part file has these types.
   */
  readonly columns: Readonly<Record<string, ParquetType>>;
  /**
   * `parquet` (saveAsParquet) or `jsonl` (saveAsJsonLines of objects, read by the OpenX JSON SerDe).
   * @default 'parquet'
   */
  readonly format?: 'parquet' | 'jsonl';
  /**
   * The Glue table name.
   * @default - the output name, lower case, with any other character than a-z, 0-9 and _ as _
   */
  readonly tableName?: string;
}

export interface SluiceCatalogOptions {
  /**
   * The Glue database name.
   * @default - `<stack name>_<pipeline name>`, lower case, other characters as _
   */
  readonly databaseName?: string;
  /** One table per output to query. @default - none (a database and a workgroup only) */
  readonly tables?: readonly SluiceCatalogTable[];
  /**
   * The first day (UTC, `YYYY-MM-DD`) the `dt` projection covers: a query without a `dt`
   * condition lists every day from then to now.
   * @default '2025-01-01'
   */
  readonly projectionStart?: string;
  /** How long query results are kept under `athena-results/`. @default Duration.days(30) */
  readonly resultsRetention?: Duration;
}

export interface CatalogProps extends SluiceCatalogOptions {
  readonly bucket: s3.Bucket;
  /** Key prefix of the pipeline's store in the bucket ('' or ending with '/'). */
  readonly keyPrefix: string;
  readonly pipelineName: string;
  /** Names a bad option for errors: (prop, message) => never. */
  readonly fail: (prop: string, message: string) => never;
}

const PARQUET_FORMAT = {
  inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
  outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
  serdeInfo: { serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
};
const JSON_FORMAT = {
  inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
  outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
  serdeInfo: { serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
};

const glueName = (text: string) => text.toLowerCase().replace(/[^a-z0-9_]/g, '_');

/** The Glue database, tables and Athena workgroup of a pipeline. */
export class SluiceCatalog extends Construct {
  readonly database: glue.CfnDatabase;
  readonly databaseName: string;
  readonly tables: Readonly<Record<string, glue.CfnTable>>;
  readonly workGroup: athena.CfnWorkGroup;
  readonly workGroupName: string;

  constructor(scope: Construct, id: string, props: CatalogProps) {
    super(scope, id);
    const { fail } = props;
    const stack = Stack.of(this);
    this.databaseName =
      props.databaseName ?? glueName(`${stack.stackName}_${props.pipelineName}`).slice(0, 255);
    if (!/^[a-z0-9_]{1,255}$/.test(this.databaseName)) {
      fail('catalog.databaseName', `'${this.databaseName}' must be 1 to 255 lower-case letters, digits or _`);
    }
    const start = props.projectionStart ?? '2025-01-01';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(start) || Number.isNaN(Date.parse(`${start}T00:00:00Z`))) {
      fail('catalog.projectionStart', `'${start}' must be a date YYYY-MM-DD`);
    }
    const retentionDays = (props.resultsRetention ?? Duration.days(30)).toDays();
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      fail('catalog.resultsRetention', 'must be whole days, at least 1');
    }

    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: {
        name: this.databaseName,
        description: `Saved outputs of the Sluice pipeline ${props.pipelineName}`,
      },
    });

    const tables: Record<string, glue.CfnTable> = {};
    const seen = new Set<string>();
    for (const [i, t] of (props.tables ?? []).entries()) {
      const where = `catalog.tables[${i}]`;
      if (!t.output || t.output.includes('..') || /^\/|\/$|=|\/\//.test(t.output)) {
        fail(`${where}.output`, `'${t.output}' is not an output name (the name given to saveAsParquet)`);
      }
      const format = t.format ?? 'parquet';
      if (format !== 'parquet' && format !== 'jsonl')
        fail(`${where}.format`, `must be 'parquet' or 'jsonl', got '${format}'`);
      const tableName = t.tableName ?? glueName(t.output);
      if (!/^[a-z0-9_]{1,255}$/.test(tableName)) {
        fail(`${where}.tableName`, `'${tableName}' must be 1 to 255 lower-case letters, digits or _`);
      }
      if (seen.has(tableName)) fail(`${where}.tableName`, `'${tableName}' is used by another table`);
      seen.add(tableName);
      const columns = Object.entries(t.columns ?? {});
      if (columns.length === 0)
        fail(`${where}.columns`, "give the columns, e.g. { page: 'string', views: 'bigint' }");
      for (const [name, type] of columns) {
        if (!PARQUET_TYPES.includes(type)) {
          fail(`${where}.columns.${name}`, `type '${type}' is not one of ${PARQUET_TYPES.join(', ')}`);
        }
        if (name === 'dt' || name === 'hr')
          fail(`${where}.columns.${name}`, `'${name}' is a partition column`);
      }
      const location = `s3://${props.bucket.bucketName}/${props.keyPrefix}outputs/${t.output}/`;
      const table = new glue.CfnTable(this, `Table${i}`, {
        catalogId: stack.account,
        databaseName: this.databaseName,
        tableInput: {
          name: tableName,
          description: `Sluice output '${t.output}' (${format})`,
          tableType: 'EXTERNAL_TABLE',
          partitionKeys: [
            { name: 'dt', type: 'string', comment: 'UTC date of the batch, YYYY-MM-DD' },
            { name: 'hr', type: 'int', comment: 'UTC hour of the batch, 0-23' },
          ],
          parameters: {
            EXTERNAL: 'TRUE',
            classification: format === 'parquet' ? 'parquet' : 'json',
            'projection.enabled': 'true',
            'projection.dt.type': 'date',
            'projection.dt.format': 'yyyy-MM-dd',
            'projection.dt.range': `${start},NOW`,
            'projection.dt.interval': '1',
            'projection.dt.interval.unit': 'DAYS',
            'projection.hr.type': 'integer',
            'projection.hr.range': '0,23',
            'projection.hr.digits': '2',
            'storage.location.template': `${location}dt=\${dt}/hr=\${hr}/`,
          },
          storageDescriptor: {
            location,
            columns: columns.map(([name, type]) => ({ name, type: athenaType(type) })),
            ...(format === 'parquet' ? PARQUET_FORMAT : JSON_FORMAT),
          },
        },
      });
      table.addDependency(this.database);
      tables[t.output] = table;
    }
    this.tables = tables;

    const resultsPrefix = `${props.keyPrefix}athena-results/`;
    props.bucket.addLifecycleRule({
      id: 'expire-athena-results',
      prefix: resultsPrefix,
      expiration: Duration.days(retentionDays),
    });
    this.workGroupName = `${stack.stackName}-${props.pipelineName}`
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 128);
    this.workGroup = new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: this.workGroupName,
      description: `Queries of the Sluice pipeline ${props.pipelineName}`,
      recursiveDeleteOption: true,
      state: 'ENABLED',
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        engineVersion: { selectedEngineVersion: 'AUTO' },
        resultConfiguration: {
          outputLocation: `s3://${props.bucket.bucketName}/${resultsPrefix}`,
          encryptionConfiguration: { encryptionOption: 'SSE_S3' },
        },
      },
    });
  }
}
