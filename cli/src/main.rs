//! `oss2s3`: migration jobs between Alibaba Cloud OSS and Amazon S3 (see `oss2s3 --help`).

fn main() -> std::process::ExitCode {
    oss2s3_cli::app::main()
}
