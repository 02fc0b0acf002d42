# The ECS task image (template.yaml: MysqlLoaderTaskDefinition, DbInitTaskDefinition): the
# same arm64 binaries Lambda runs, mysql-loader and db-init, each started by its container
# Command. `make task-image` builds the binaries with cargo-lambda first and pushes this.
FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal
COPY target/lambda/mysql-loader/bootstrap /usr/local/bin/mysql-loader
COPY target/lambda/db-init/bootstrap /usr/local/bin/db-init
# No shell work at run time and nothing to write but the tasks' own reports (to S3).
USER 65534:65534
