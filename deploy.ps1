<#
.SYNOPSIS
    Runs the quantlab stack (PostgreSQL, Airflow, MLflow, JupyterLab) with Docker Compose.

.DESCRIPTION
    The same commands as deploy.sh, for Windows PowerShell 5.1 and PowerShell 7:

      init            write .env from .env.example with fresh random secrets
      start           init if needed, build, start, wait until every service is healthy
      stop            stop and remove the containers (volumes are kept)
      restart         stop, then start
      status          list the containers and their health
      logs [service]  follow the logs of one service, or of all
      clean           after confirmation, remove containers AND volumes (all data)

    QUANTLAB_START_TIMEOUT (seconds, default 600) bounds the wait for healthy services.
    AIRFLOW_EXECUTOR=CeleryExecutor and AIRFLOW_WORKERS=N in .env add the `celery` profile:
    Redis as the broker, the Airflow database as the result backend and N workers
    (worker@<container>); by hand: docker compose --profile celery up -d --scale airflow-worker=N

.EXAMPLE
    .\deploy.ps1 start

.EXAMPLE
    .\deploy.ps1 logs airflow-scheduler
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true, Position = 0)]
    [ValidateSet("init", "start", "stop", "restart", "status", "logs", "clean")]
    [string]$Command,

    [Parameter(Position = 1)]
    [string]$Service
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ProjectRoot = $PSScriptRoot
$EnvFile = Join-Path $ProjectRoot '.env'
$EnvExample = Join-Path $ProjectRoot '.env.example'
$ComposeFile = Join-Path $ProjectRoot 'docker-compose.yml'
$StartTimeoutSeconds = 600
if ($env:QUANTLAB_START_TIMEOUT) { $StartTimeoutSeconds = [int]$env:QUANTLAB_START_TIMEOUT }
# Bind-mounted directories the stack writes to and git does not track; created here so that
# Docker does not create them itself.
$RuntimeDirs = @('data', 'experiments')
# One line per container: service, state, health ("none" without a healthcheck), exit code.
# Backquotes, not double quotes, so Windows PowerShell 5.1 passes the argument intact.
$InspectFormat = '{{index .Config.Labels `com.docker.compose.service`}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}'

function Invoke-Native {
    # Runs a native command and returns its exit code. Windows PowerShell 5.1 turns a native
    # command's stderr into error records, which 'Stop' would make fatal, so the exit code decides.
    param([string]$FilePath, [string[]]$ArgumentList, [switch]$Quiet)
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        if ($Quiet) { & $FilePath @ArgumentList *> $null }
        else { & $FilePath @ArgumentList | Out-Host }
    }
    finally { $ErrorActionPreference = $previous }
    return $LASTEXITCODE
}

function Get-NativeOutput {
    # Runs a native command and returns its stdout lines; throws when it fails.
    param([string]$FilePath, [string[]]$ArgumentList)
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try { $output = & $FilePath @ArgumentList 2> $null }
    finally { $ErrorActionPreference = $previous }
    if ($LASTEXITCODE -ne 0) {
        throw "'$FilePath $($ArgumentList -join ' ')' failed with exit code $LASTEXITCODE."
    }
    return $output
}

function Get-ProfileArguments {
    # AIRFLOW_EXECUTOR in .env picks the executor; CeleryExecutor also needs the `celery` profile
    # (Redis and the workers), so every compose call gets it and the two never disagree.
    if (-not (Test-Path -LiteralPath $EnvFile)) { return @() }
    $executor = Get-EnvValue 'AIRFLOW_EXECUTOR' 'LocalExecutor'
    switch ($executor) {
        'LocalExecutor' { return @() }
        'CeleryExecutor' { return @('--profile', 'celery') }
        default { throw "AIRFLOW_EXECUTOR in $EnvFile is '$executor'; set it to LocalExecutor or CeleryExecutor." }
    }
}

function Get-ComposeArguments {
    param([string[]]$Arguments)
    return @('compose', '--project-directory', $ProjectRoot, '--file', $ComposeFile, '--env-file', $EnvFile) + @(Get-ProfileArguments) + $Arguments
}

function Invoke-Compose {
    # Runs `docker compose <Arguments>` for this project; throws when it fails.
    param([string[]]$Arguments)
    $code = Invoke-Native -FilePath 'docker' -ArgumentList (Get-ComposeArguments $Arguments)
    if ($code -ne 0) {
        throw "docker compose $($Arguments -join ' ') failed with exit code $code. Read a service's logs with .\deploy.ps1 logs <service>."
    }
}

function Assert-Docker {
    if (-not (Get-Command 'docker' -CommandType Application -ErrorAction SilentlyContinue)) {
        throw 'docker was not found on PATH. Install Docker Desktop (https://docs.docker.com/desktop/) and try again.'
    }
    if ((Invoke-Native -FilePath 'docker' -ArgumentList @('info') -Quiet) -ne 0) {
        throw "Docker is installed but its engine is not running ('docker info' failed). Start Docker Desktop and try again."
    }
    if ((Invoke-Native -FilePath 'docker' -ArgumentList @('compose', 'version') -Quiet) -ne 0) {
        throw "The Docker Compose v2 plugin is missing ('docker compose version' failed). Update Docker Desktop and try again."
    }
}

function Assert-EnvFile {
    if (-not (Test-Path -LiteralPath $EnvFile -PathType Leaf)) {
        throw "$EnvFile does not exist. Run .\deploy.ps1 init (or start) first."
    }
}

function New-RandomBytes {
    param([int]$Count)
    $bytes = New-Object 'byte[]' $Count
    $rng = [System.Security.Cryptography.RandomNumberGenerator]::Create()
    try { $rng.GetBytes($bytes) }
    finally { $rng.Dispose() }
    # The comma keeps the pipeline from unrolling the array into single bytes.
    return , $bytes
}

function ConvertTo-Hex {
    param([byte[]]$Bytes)
    return [System.BitConverter]::ToString($Bytes).Replace('-', '').ToLowerInvariant()
}

function Get-SecretValue {
    # A fresh value for a secret variable of .env.example, or $null for any other variable.
    # Hex keeps passwords safe inside the postgresql:// URLs built from them.
    param([string]$Name)
    if ($Name -in @('POSTGRES_PASSWORD', 'AIRFLOW_DB_PASSWORD', 'MLFLOW_DB_PASSWORD', 'QUANTLAB_DB_PASSWORD',
            'AIRFLOW_ADMIN_PASSWORD', 'JUPYTER_TOKEN')) {
        return ConvertTo-Hex (New-RandomBytes 24)
    }
    if ($Name -in @('AIRFLOW_JWT_SECRET', 'AIRFLOW_API_SECRET_KEY')) {
        return ConvertTo-Hex (New-RandomBytes 32)
    }
    if ($Name -eq 'AIRFLOW_FERNET_KEY') {
        # Fernet wants the url-safe base64 of 32 random bytes.
        return [System.Convert]::ToBase64String((New-RandomBytes 32)).Replace('+', '-').Replace('/', '_')
    }
    return $null
}

function Get-EnvValue {
    param([string]$Name, [string]$Default)
    $value = ''
    foreach ($line in [System.IO.File]::ReadAllLines($EnvFile)) {
        if ($line -match "^$Name=(.*)$") { $value = $Matches[1] }
    }
    if ($value) { return $value }
    return $Default
}

function Initialize-EnvFile {
    if (Test-Path -LiteralPath $EnvFile) {
        throw "$EnvFile already exists; refusing to overwrite it (its passwords are the ones your volumes were created with). To start over: .\deploy.ps1 clean, then delete .env."
    }
    if (-not (Test-Path -LiteralPath $EnvExample -PathType Leaf)) {
        throw "$EnvExample is missing; it is the template for .env."
    }

    $isUnix = [System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Unix
    $uid = '50000'
    if ($isUnix) {
        # Your UID on Linux/macOS, so files the containers write stay yours; never root, which
        # JupyterLab refuses to run as.
        $id = "$(Get-NativeOutput -FilePath 'id' -ArgumentList @('-u'))".Trim()
        if ($id -and $id -ne '0') { $uid = $id }
    }

    $lines = foreach ($line in [System.IO.File]::ReadAllLines($EnvExample)) {
        if ($line -match '^([A-Za-z_][A-Za-z0-9_]*)=(.*)$') {
            $name = $Matches[1]
            $value = $Matches[2]
            if ($name -eq 'AIRFLOW_UID') {
                $value = $uid
            }
            elseif ($value -eq '') {
                $value = Get-SecretValue -Name $name
                if (-not $value) {
                    throw "$EnvExample leaves $name empty but deploy.ps1 has no generator for it; add it to Get-SecretValue."
                }
            }
            "$name=$value"
        }
        else {
            $line
        }
    }

    # CreateNew fails if .env appeared meanwhile. On Linux and macOS the file is made private
    # while it is still empty, before any secret is in it. UTF-8 without a BOM and LF line
    # ends, as Compose expects; Windows PowerShell's Set-Content would add a BOM.
    $bytes = (New-Object System.Text.UTF8Encoding($false)).GetBytes(($lines -join "`n") + "`n")
    $stream = [System.IO.File]::Open($EnvFile, [System.IO.FileMode]::CreateNew, [System.IO.FileAccess]::Write)
    try {
        if ($isUnix -and (Invoke-Native -FilePath 'chmod' -ArgumentList @('600', $EnvFile) -Quiet) -ne 0) {
            throw "could not make $EnvFile readable only by you (chmod 600 failed); nothing was written."
        }
        $stream.Write($bytes, 0, $bytes.Length)
        $stream.Dispose()
    }
    catch {
        $stream.Dispose()
        Remove-Item -LiteralPath $EnvFile -Force -ErrorAction SilentlyContinue
        throw
    }

    Write-Host "Wrote $EnvFile with fresh secrets."
    Write-Host 'Airflow login: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD in .env; Jupyter token: JUPYTER_TOKEN in .env.'
}

function Wait-StackHealthy {
    # Waits until every service with a healthcheck is healthy and every one-shot job has exited 0.
    # Fails at once when a container is unhealthy or has exited with an error.
    $deadline = (Get-Date).AddSeconds($StartTimeoutSeconds)
    $services = @(Get-NativeOutput -FilePath 'docker' -ArgumentList (Get-ComposeArguments @('config', '--services')) |
            Where-Object { $_ })
    while ($true) {
        $ids = @(Get-NativeOutput -FilePath 'docker' -ArgumentList (Get-ComposeArguments @('ps', '--all', '--quiet')) |
                Where-Object { $_ })
        $states = @{}
        if ($ids.Count -gt 0) {
            foreach ($line in @(Get-NativeOutput -FilePath 'docker' -ArgumentList (@('inspect', '--format', $InspectFormat) + $ids))) {
                $fields = @("$line".Trim() -split '\s+')
                if ($fields.Count -ge 4 -and -not $states.ContainsKey($fields[0])) { $states[$fields[0]] = $fields }
            }
        }

        $pending = @()
        $failed = @()
        foreach ($name in $services) {
            if (-not $states.ContainsKey($name)) {
                $pending += "$name (not created)"
                continue
            }
            $state = $states[$name][1]
            $health = $states[$name][2]
            $code = $states[$name][3]
            if ($state -eq 'running' -and $health -eq 'healthy') { }
            elseif ($state -eq 'exited' -and $health -eq 'none') {
                if ($code -ne '0') { $failed += "$name (exited with code $code)" }
            }
            elseif ($health -eq 'unhealthy') { $failed += "$name (unhealthy)" }
            elseif ($state -in @('exited', 'dead')) { $failed += "$name ($state, exit code $code)" }
            else { $pending += "$name ($state/$health)" }
        }

        if ($failed.Count -gt 0) {
            $null = Invoke-Native -FilePath 'docker' -ArgumentList (Get-ComposeArguments @('ps', '--all'))
            throw "These services failed: $($failed -join ', '). Read their logs with .\deploy.ps1 logs <service>."
        }
        if ($pending.Count -eq 0) { return }
        if ((Get-Date) -ge $deadline) {
            $null = Invoke-Native -FilePath 'docker' -ArgumentList (Get-ComposeArguments @('ps', '--all'))
            throw "Not healthy after $($StartTimeoutSeconds)s: $($pending -join ', '). Read their logs with .\deploy.ps1 logs <service>."
        }
        Write-Host "Waiting for: $($pending -join ', ')"
        Start-Sleep -Seconds 5
    }
}

function Start-Stack {
    if (-not (Test-Path -LiteralPath $EnvFile)) { Initialize-EnvFile }
    foreach ($dir in $RuntimeDirs) {
        $null = New-Item -ItemType Directory -Force -Path (Join-Path $ProjectRoot $dir)
    }
    Invoke-Compose @('up', '-d', '--build')
    Wait-StackHealthy
    Write-Host ''
    Write-Host 'quantlab is up.'
    Write-Host "  Airflow     http://localhost:$(Get-EnvValue 'AIRFLOW_PORT' '8080')  (login: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD in .env)"
    Write-Host "  MLflow      http://localhost:$(Get-EnvValue 'MLFLOW_PORT' '5000')"
    Write-Host "  JupyterLab  http://localhost:$(Get-EnvValue 'JUPYTER_PORT' '8888')/lab  (token: JUPYTER_TOKEN in .env)"
    Write-Host "  PostgreSQL  127.0.0.1:$(Get-EnvValue 'POSTGRES_PORT' '5433')  (users and passwords in .env)"
}

function Stop-Stack {
    Assert-EnvFile
    Invoke-Compose @('down')
}

function Show-StackStatus {
    Assert-EnvFile
    Invoke-Compose @('ps', '--all')
}

function Show-StackLogs {
    param([string]$Name)
    Assert-EnvFile
    $arguments = @('logs', '-f', '--tail', '200')
    if ($Name) { $arguments += $Name }
    Invoke-Compose $arguments
}

function Remove-Stack {
    Assert-EnvFile
    Write-Host 'This removes the quantlab containers AND volumes: the Airflow, MLflow and ledger databases,'
    Write-Host 'the MLflow artifacts and the Airflow logs. Files under .\data, .\experiments and .env stay.'
    $answer = Read-Host "Type 'yes' to delete them"
    if ($answer -ne 'yes') { throw 'Aborted; nothing was deleted.' }
    Invoke-Compose @('down', '-v', '--remove-orphans')
}

try {
    if ($Service -and $Command -ne 'logs') { throw "A service name goes with the logs command only, not with $Command." }
    Assert-Docker
    switch ($Command) {
        'init' { Initialize-EnvFile }
        'start' { Start-Stack }
        'stop' { Stop-Stack }
        'restart' { Stop-Stack; Start-Stack }
        'status' { Show-StackStatus }
        'logs' { Show-StackLogs -Name $Service }
        'clean' { Remove-Stack }
    }
}
catch {
    [Console]::Error.WriteLine("deploy.ps1: $($_.Exception.Message)")
    exit 1
}
exit 0
