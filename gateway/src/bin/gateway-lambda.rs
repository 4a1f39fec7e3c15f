//! The `gateway-lambda` binary: the gateway as an AWS Lambda function behind API Gateway, a
//! thin shell over [`gateway::lambda`]. Build instructions: README, "Deploy on AWS".

fn main() -> std::process::ExitCode {
    gateway::lambda::main()
}
