<#
.SYNOPSIS
    Runs `mt5gate bridge --terminal official` next to the MetaTrader 5 terminal, and starts it
    again when it stops on its own. install-bridge.ps1 registers this script to run at logon.

.DESCRIPTION
    Exit code 2 of the bridge is a usage problem (a missing, empty or unreadable token file, a
    bad TLS certificate): it is logged and not retried, like RestartPreventExitStatus=2 of the
    systemd units. Any other exit (a crash, the port taken) is retried after
    -RestartDelaySeconds. Each run writes its stdout and stderr to its own pair of files in
    -LogDir (the newest 20 pairs are kept); run-bridge.log records the starts and exits.

    Not run where it was written (no Windows there): see docs/deploy.md#windows.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $Python,
    [Parameter(Mandatory = $true)] [string] $TokenFile,
    [string] $ListenHost = '127.0.0.1',
    [ValidateRange(1, 65535)] [int] $Port = 18812,
    [string] $TlsCert,
    [string] $TlsKey,
    [string] $LogDir = (Join-Path $env:ProgramData 'mt5gate\logs'),
    [ValidateRange(1, 3600)] [int] $RestartDelaySeconds = 10
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

function ConvertTo-Argument([string] $Value) {
    # One argument as CreateProcess splits it: quoted when it holds spaces or quotes.
    if ($Value -notmatch '[\s"]') { return $Value }
    return '"' + ($Value -replace '"', '\"') + '"'
}

function Write-Supervisor([string] $Line) {
    $stamp = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
    Add-Content -LiteralPath (Join-Path $LogDir 'run-bridge.log') -Value "$stamp $Line" -Encoding UTF8
}

$bridgeArgs = @('-m', 'mt5gate.bridge.cli', '--terminal', 'official', '--host', $ListenHost,
                '--port', "$Port", '--token-file', $TokenFile)
if ($TlsCert -or $TlsKey) {
    $bridgeArgs += @('--tls-cert', $TlsCert, '--tls-key', $TlsKey)
}
$argumentLine = ($bridgeArgs | ForEach-Object { ConvertTo-Argument $_ }) -join ' '

New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
while ($true) {
    $stamp = (Get-Date).ToUniversalTime().ToString('yyyyMMddTHHmmssZ')
    $out = Join-Path $LogDir "bridge-$stamp.out.log"
    $err = Join-Path $LogDir "bridge-$stamp.err.log"
    Write-Supervisor "starting: $Python $argumentLine"
    $process = Start-Process -FilePath $Python -ArgumentList $argumentLine -NoNewWindow -Wait `
        -PassThru -RedirectStandardOutput $out -RedirectStandardError $err
    $code = $process.ExitCode
    Write-Supervisor "the bridge exited with code $code (its output: $out, $err)"
    Get-ChildItem -LiteralPath $LogDir -Filter 'bridge-*.log' |
        Sort-Object LastWriteTime -Descending | Select-Object -Skip 40 |
        Remove-Item -Force
    if ($code -eq 2) {
        Write-Supervisor 'exit code 2 is a usage problem (see the .err.log): not restarting'
        exit 2
    }
    Start-Sleep -Seconds $RestartDelaySeconds
}
